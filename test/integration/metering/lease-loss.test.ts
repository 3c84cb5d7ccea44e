import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../../src/db/database.js";
import type { EmbeddingProvider } from "../../../src/embeddings/provider.js";
import { DocumentIngestor, type IngestResult, type PreparedDocument, type WithinStore } from "../../../src/ingest/ingest-document.js";
import { IngestJobHandler } from "../../../src/ingest/ingest-job.js";
import { FairScheduler, type ClaimedJob } from "../../../src/jobs/fair-scheduler.js";
import { JobRunner } from "../../../src/jobs/job-runner.js";
import type { Flow } from "../../../src/flow/fair-queue.js";
import { createLogger } from "../../../src/observability/logger.js";
import { countTenantRows } from "../../support/api-contract.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { getJob, multiChunkText, stepsOf } from "../../support/job-helpers.js";
import { counters, ledgerRows, putTenantOnPlan, reservationCount } from "../../support/metering-helpers.js";
import { isolatedBackend } from "../../support/scratch-database.js";
import type { JobJson } from "../../support/api-types.js";

/**
 * Issue 14, row 2: "one job, one charge". Two instances (two job runners, each with its own
 * scheduler and ingestor) share one database. Instance A claims a job and then freezes — as it
 * would if another tenant's hostile upload blocked its event loop: its heartbeats stop reaching
 * the database, here by a scheduler whose heartbeat does nothing — until its lease has expired.
 * Instance B takes the job over and finishes it. Then A wakes and carries on. Whatever A did or
 * does, the tenant's ledger holds exactly one charged embedding for the job, the counters equal
 * it, no budget stays reserved, and the document is stored once.
 *
 * On Postgres the suite has a scratch database, so no other suite's workers take its job (nor it theirs).
 */
const LEASE_MS = 400;

/** A gate a test opens when it chooses; `entered` resolves once something waits at it. */
class Gate {
  private open!: () => void;
  private arrived!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.open = resolve));
  readonly entered = new Promise<void>((resolve) => (this.arrived = resolve));
  async pass(): Promise<void> {
    this.arrived();
    await this.opened;
  }
  release(): void {
    this.open();
  }
}

/** The shared model; the first call after `stallNextAt(gate)` waits at the gate first (a frozen embed). */
class StallingEmbeddings implements EmbeddingProvider {
  private gate: Gate | undefined;
  constructor(private readonly inner: EmbeddingProvider) {}
  get model() {
    return this.inner.model;
  }
  get dimensions() {
    return this.inner.dimensions;
  }
  stallNextAt(gate: Gate): void {
    this.gate = gate;
  }
  async embed(texts: readonly string[], flow?: Flow): Promise<number[][]> {
    const vectors = await this.inner.embed(texts, flow);
    const gate = this.gate;
    this.gate = undefined;
    await gate?.pass();
    return vectors;
  }
}

/** An ingestor that, when armed, stalls before storing: its embedding is already settled (charged). */
class StallingStoreIngestor extends DocumentIngestor {
  gate: Gate | undefined;
  override async store(ctx: Parameters<DocumentIngestor["store"]>[0], prepared: PreparedDocument, vectors: number[][], within?: WithinStore): Promise<IngestResult> {
    const gate = this.gate;
    this.gate = undefined;
    await gate?.pass();
    return super.store(ctx, prepared, vectors, within);
  }
}

/** A scheduler whose heartbeats stop reaching the database once frozen: the instance looks dead. */
class FreezableScheduler extends FairScheduler {
  frozen = false;
  override heartbeat(job: ClaimedJob, workerId: string): Promise<boolean> {
    return this.frozen ? Promise.resolve(true) : super.heartbeat(job, workerId);
  }
}

describe.each(backends)("one job, one charge when a frozen instance loses the lease, on $name", (baseBackend) => {
  let fence: TestFence;
  let db: Database;
  let drop: () => Promise<void> = async () => undefined;
  let embeddings: StallingEmbeddings;

  beforeAll(async () => {
    const isolated = await isolatedBackend(baseBackend, "fence_lease_loss");
    drop = isolated.drop;
    // No workers of its own: the two instances below are the only ones that run jobs.
    fence = await TestFence.start(isolated.backend, { env: { FENCE_JOB_WORKERS: "0" } });
    db = fence.fence.db;
    embeddings = new StallingEmbeddings(fence.fence.embeddings);
  });
  // A failed case must not leave its frozen instance stalled (and holding a job) for the next one.
  const gates: Gate[] = [];
  afterEach(() => {
    for (const gate of gates.splice(0)) gate.release();
  });
  afterAll(async () => {
    await fence?.close();
    await drop();
  });

  /** One instance's job machinery on the shared database. */
  function instance(ingestor: DocumentIngestor, leaseMs: number) {
    const scheduler = new FreezableScheduler(db, { leaseMs });
    const runner = new JobRunner(db, scheduler, [new IngestJobHandler(ingestor)], createLogger("silent"), {
      workers: 0,
      reservedWorkers: 0,
      leaseMs,
      pollMs: 50,
      retryBaseMs: 50,
    });
    return { scheduler, runner };
  }
  const newIngestor = () => new StallingStoreIngestor(db, embeddings, fence.fence.budgets, { maxTextChars: 1_000_000 });

  async function queueUpload(tenant: TestTenant, topic: string): Promise<JobJson> {
    const res = await fence.request("POST", "/v1/documents", {
      key: tenant.key,
      json: { title: topic, text: multiChunkText(topic, 3) },
      headers: { prefer: "respond-async" },
    });
    expect(res.status).toBe(202);
    return (await res.json()) as JobJson;
  }

  /** The ledger, counters, reservations and documents of a tenant whose one job ended. */
  async function expectOneCharge(tenant: TestTenant, jobId: string): Promise<void> {
    const rows = await ledgerRows(fence, tenant, "embed_documents");
    const charged = rows.filter((r) => r.status === "charged");
    expect(charged.map((r) => r.eventId)).toEqual([`job:${jobId}:embed_documents`]);
    expect(charged[0]!.inputTokens).toBeGreaterThan(0);
    const { day, month } = await counters(fence, tenant);
    expect(day).toEqual({ tokens: charged[0]!.inputTokens, costMicros: charged[0]!.costMicros });
    expect(month).toEqual(day);
    expect(await reservationCount(fence, tenant)).toBe(0);
    const stored = await countTenantRows(fence, tenant.id);
    expect(stored.documents).toBe(1);
  }

  const get = (tenant: TestTenant) => async (path: string) => fence.request("GET", path, { key: tenant.key });

  it("an attempt frozen inside its embedding, taken over meanwhile, is never charged when it wakes", async () => {
    const tenant = await fence.createTenant("lease-loss-embed", "enterprise");
    const job = await queueUpload(tenant, "Hydraulic press");
    const a = instance(newIngestor(), LEASE_MS);
    const b = instance(newIngestor(), 30_000);

    const frozenEmbed = new Gate();
    gates.push(frozenEmbed);
    embeddings.stallNextAt(frozenEmbed);
    const aRun = a.runner.runAvailable(1, Number.POSITIVE_INFINITY, { tenantId: tenant.id });
    await frozenEmbed.entered;
    a.scheduler.frozen = true;
    await sleep(LEASE_MS * 2);

    // B's claim finds the expired lease, queues the job again and runs it to the end.
    expect(await b.runner.runAvailable(1, Number.POSITIVE_INFINITY, { tenantId: tenant.id })).toBe(1);
    const done = await getJob(get(tenant), job.id);
    expect(done).toMatchObject({ status: "succeeded", attempts: 2 });

    frozenEmbed.release();
    expect(await aRun).toBe(1);
    const final = await getJob(get(tenant), job.id);
    expect(final).toMatchObject({ status: "succeeded", attempts: 2, result: done.result });
    // A recorded nothing after it lost the job; B ran all four steps.
    expect(stepsOf(final, 1)).toEqual(["parse:succeeded", "chunk:succeeded"]);
    expect(stepsOf(final, 2)).toEqual(["parse:succeeded", "chunk:succeeded", "embed:succeeded", "store:succeeded"]);
    await expectOneCharge(tenant, job.id);
    // Not even a failed record of A's attempt: it lost the job before it settled.
    expect((await ledgerRows(fence, tenant, "embed_documents")).filter((r) => r.status === "failed")).toEqual([]);
  });

  it("an attempt that charged, then froze before storing: the attempt that takes over is the same charge", async () => {
    const tenant = await fence.createTenant("lease-loss-store", "enterprise");
    const job = await queueUpload(tenant, "Conveyor belt");
    const aIngestor = newIngestor();
    const a = instance(aIngestor, LEASE_MS);
    const b = instance(newIngestor(), 30_000);

    const frozenStore = new Gate();
    gates.push(frozenStore);
    aIngestor.gate = frozenStore;
    const aRun = a.runner.runAvailable(1, Number.POSITIVE_INFINITY, { tenantId: tenant.id });
    await frozenStore.entered;
    a.scheduler.frozen = true;
    // A's embedding is on the ledger already, settled while it still held the job.
    const before = (await ledgerRows(fence, tenant, "embed_documents")).filter((r) => r.status === "charged");
    expect(before.map((r) => r.eventId)).toEqual([`job:${job.id}:embed_documents`]);
    await sleep(LEASE_MS * 2);

    expect(await b.runner.runAvailable(1, Number.POSITIVE_INFINITY, { tenantId: tenant.id })).toBe(1);
    frozenStore.release();
    expect(await aRun).toBe(1);

    const final = await getJob(get(tenant), job.id);
    expect(final).toMatchObject({ status: "succeeded", attempts: 2 });
    expect(stepsOf(final, 2)).toEqual(["parse:succeeded", "chunk:succeeded", "embed:succeeded", "store:succeeded"]);
    await expectOneCharge(tenant, job.id);
    // B's settle met A's event: kept once, the repeat counted for reconciliation only.
    const [charged] = (await ledgerRows(fence, tenant, "embed_documents")).filter((r) => r.status === "charged");
    expect(charged!.duplicateCount).toBe(1);
  });

  it("the takeover still runs when the job's embedding is already charged and the budget has no room left", async () => {
    const tenant = await fence.createTenant("lease-loss-budget", "enterprise");
    const job = await queueUpload(tenant, "Cooling tower");
    const aIngestor = newIngestor();
    const a = instance(aIngestor, LEASE_MS);
    const b = instance(newIngestor(), 30_000);

    const frozenStore = new Gate();
    gates.push(frozenStore);
    aIngestor.gate = frozenStore;
    const aRun = a.runner.runAvailable(1, Number.POSITIVE_INFINITY, { tenantId: tenant.id });
    await frozenStore.entered;
    a.scheduler.frozen = true;
    // The tenant's day budget is now exactly what A's charge used: a new embedding would not fit,
    // but the job's own is paid for — B must not be refused (402) nor conflict (409) on it.
    const used = (await counters(fence, tenant)).day.tokens;
    expect(used).toBeGreaterThan(0);
    await putTenantOnPlan(fence, tenant, `lease-loss-${tenant.id.slice(0, 8)}`, { tokensPerDay: used, maxRunningJobs: 4, schedulingWeight: 16 });
    await sleep(LEASE_MS * 2);

    expect(await b.runner.runAvailable(1, Number.POSITIVE_INFINITY, { tenantId: tenant.id })).toBe(1);
    frozenStore.release();
    await aRun;
    const final = await getJob(get(tenant), job.id);
    expect(final, JSON.stringify(final)).toMatchObject({ status: "succeeded", attempts: 2 });
    await expectOneCharge(tenant, job.id);
  });
});
