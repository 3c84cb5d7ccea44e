import type { BenchTenant, ServiceUnderTest } from "./service.js";
import type { JobJson, JobListJson } from "../../test/support/api-types.js";

export const DONE = new Set<JobJson["status"]>(["succeeded", "failed", "cancelled"]);

/**
 * When a job's work ended, in epoch milliseconds: the end of its last recorded step (the `store`
 * step is timed by the worker up to the statement that marks the job succeeded), else
 * `finished_at` (the database's clock at the start of that transaction).
 */
export function jobEnd(job: JobJson): number | undefined {
  const last = job.steps[job.steps.length - 1];
  if (job.status === "succeeded" && last) return Date.parse(last.started_at) + last.duration_ms;
  return job.finished_at ? Date.parse(job.finished_at) : undefined;
}

/** Chunks a succeeded ingestion job stored (from its `store` step). */
export function jobChunks(job: JobJson): number {
  const store = job.steps.find((s) => s.name === "store" && s.status === "succeeded");
  const chunks = store?.detail?.chunks;
  return typeof chunks === "number" ? chunks : 0;
}

/** Every job of the tenant (optionally of one batch or status), following the cursor. */
export async function listJobs(
  service: ServiceUnderTest,
  tenant: BenchTenant,
  filter: { batchId?: string; status?: JobJson["status"] } = {},
): Promise<JobJson[]> {
  const out: JobJson[] = [];
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams({ limit: "100" });
    if (filter.batchId) query.set("batch_id", filter.batchId);
    if (filter.status) query.set("status", filter.status);
    if (cursor) query.set("cursor", cursor);
    const res = await service.request("GET", `/v1/jobs?${query}`, tenant.key);
    if (res.status !== 200) throw new Error(`list jobs: ${res.status} ${JSON.stringify(res.body)}`);
    const page = res.body as JobListJson;
    out.push(...page.jobs);
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}

export async function getJob(service: ServiceUnderTest, tenant: BenchTenant, id: string, signal?: AbortSignal): Promise<JobJson> {
  const res = await service.request("GET", `/v1/jobs/${id}`, tenant.key, undefined, {}, signal);
  if (res.status !== 200) throw new Error(`get job: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as JobJson;
}
