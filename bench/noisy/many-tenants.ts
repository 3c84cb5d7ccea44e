import { setTimeout as sleep } from "node:timers/promises";
import type { QueueDiscipline } from "../../src/flow/fair-queue.js";
import { percentile } from "../stats.js";
import type { GeneratedDocument } from "../text-corpus.js";
import { DONE, jobChunks, jobEnd, listJobs } from "./jobs.js";
import type { BenchTenant, ServiceUnderTest } from "./service.js";
import type { BatchAcceptedJson, JobJson } from "../../test/support/api-types.js";

export interface ManyTenantsResult {
  discipline: QueueDiscipline;
  tenants: number;
  docs: number;
  chunks: number;
  failed: number;
  /** Jobs not finished when the time limit was reached. */
  unfinished: number;
  /** From the first batch sent to the last job finished. */
  wallMs: number;
  docsPerSecond: number;
  chunksPerSecond: number;
  /** When half of all documents were done: the fewest and the most any one tenant had done. */
  halfwayMin: number;
  halfwayMax: number;
  /** Jain's fairness index of the per-tenant counts at that moment: 1 = all equal, 1/n = one tenant had everything. */
  halfwayJain: number;
  /** Seconds until every tenant had at least one document done. */
  allStartedSec: number;
  /** Seconds until a tenant's whole batch was done: the first tenant, the median tenant, the last. */
  firstTenantDoneSec: number;
  medianTenantDoneSec: number;
  lastTenantDoneSec: number;
}

/**
 * Ingestion throughput with many tenants at once: each tenant queues one batch at the same moment,
 * and the workers drain them. Besides docs/s and chunks/s, the spread shows how the capacity was
 * shared: when half of everything was done, did every tenant have about half of its batch, or
 * had the first tenants finished while the last had not started?
 */
export async function manyTenantsIngestion(
  service: ServiceUnderTest,
  tenants: readonly BenchTenant[],
  docsFor: (index: number) => GeneratedDocument[],
  timeLimitMs: number,
): Promise<ManyTenantsResult> {
  const started = Date.now();
  const batches = await Promise.all(
    tenants.map(async (tenant, i) => {
      const documents = docsFor(i).map((d) => ({ title: d.title, text: d.markdown }));
      const res = await service.request("POST", "/v1/documents/batch", tenant.key, { documents });
      if (res.status !== 202) throw new Error(`batch: ${res.status} ${JSON.stringify(res.body)}`);
      return (res.body as BatchAcceptedJson).batch_id;
    }),
  );

  const jobsByTenant = new Map<number, JobJson[]>();
  const deadline = started + timeLimitMs;
  for (;;) {
    await sleep(500);
    let open = 0;
    for (let i = 0; i < tenants.length; i++) {
      const known = jobsByTenant.get(i);
      if (known && known.every((j) => DONE.has(j.status))) continue;
      const jobs = await listJobs(service, tenants[i]!, { batchId: batches[i]! });
      jobsByTenant.set(i, jobs);
      open += jobs.filter((j) => !DONE.has(j.status)).length;
    }
    if (open === 0 || Date.now() >= deadline) break;
  }

  const all = [...jobsByTenant.values()].flat();
  const succeeded = all.filter((j) => j.status === "succeeded");
  const ends = succeeded.map((j) => jobEnd(j)!).sort((a, b) => a - b);
  const lastEnd = ends[ends.length - 1] ?? Date.now();
  const wallMs = lastEnd - started;
  const halfway = ends[Math.max(0, Math.ceil(all.length / 2) - 1)] ?? lastEnd;
  const doneAtHalf: number[] = [];
  const firstDone: number[] = [];
  const allDone: number[] = [];
  for (let i = 0; i < tenants.length; i++) {
    const mine = (jobsByTenant.get(i) ?? []).filter((j) => j.status === "succeeded").map((j) => jobEnd(j)!);
    doneAtHalf.push(mine.filter((t) => t <= halfway).length);
    firstDone.push(mine.length ? Math.min(...mine) - started : Number.POSITIVE_INFINITY);
    const complete = mine.length === docsFor(i).length;
    allDone.push(complete ? Math.max(...mine) - started : Number.POSITIVE_INFINITY);
  }
  const sortedDone = [...allDone].sort((a, b) => a - b);
  const chunks = succeeded.reduce((s, j) => s + jobChunks(j), 0);
  return {
    discipline: service.discipline,
    tenants: tenants.length,
    docs: all.length,
    chunks,
    failed: all.filter((j) => j.status === "failed").length,
    unfinished: all.filter((j) => !DONE.has(j.status)).length,
    wallMs,
    docsPerSecond: succeeded.length / (wallMs / 1000),
    chunksPerSecond: chunks / (wallMs / 1000),
    halfwayMin: Math.min(...doneAtHalf),
    halfwayMax: Math.max(...doneAtHalf),
    halfwayJain: jain(doneAtHalf),
    allStartedSec: Math.max(...firstDone) / 1000,
    firstTenantDoneSec: sortedDone[0]! / 1000,
    medianTenantDoneSec: percentile(sortedDone, 50) / 1000,
    lastTenantDoneSec: sortedDone[sortedDone.length - 1]! / 1000,
  };
}

function jain(values: readonly number[]): number {
  const sum = values.reduce((s, v) => s + v, 0);
  const squares = values.reduce((s, v) => s + v * v, 0);
  return squares > 0 ? (sum * sum) / (values.length * squares) : Number.NaN;
}
