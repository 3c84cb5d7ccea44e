import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows, type Database } from "../../../src/db/database.js";
import { UnprocessableDocumentError } from "../../../src/core/errors.js";
import { FairScheduler } from "../../../src/jobs/fair-scheduler.js";
import type { NewJob } from "../../../src/jobs/job-queue.js";
import type { JobHandler } from "../../../src/jobs/job-contracts.js";
import { JobRunner } from "../../../src/jobs/job-runner.js";
import type { RunningJob } from "../../../src/jobs/running-job.js";
import { createLogger } from "../../../src/observability/logger.js";
import { authenticateTenantKey } from "../../../src/tenancy/authenticate.js";
import type { TenantContext } from "../../../src/core/tenant-context.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { isolatedBackend } from "../../support/scratch-database.js";

/**
 * The job runner's decisions, on the database, with handlers that fail on purpose:
 * - issue 14 row 9: a deterministic internal error (a stack overflow on a pathological document,
 *   a TypeError) fails the job after one attempt instead of five; a connection error is retried;
 * - issue 14 row 16: the run after a tenant's 202 on Workers (`runAvailable` with `tenantId`)
 *   claims only that tenant's jobs; other tenants' due jobs are left to the cron run.
 * No background worker runs (FENCE_JOB_WORKERS=0): the runners built here are the only ones.
 */
const ran: { kind: string; tenantId: string }[] = [];

function failing(kind: string, fail: () => unknown): JobHandler {
  return {
    kind,
    async run(job: RunningJob) {
      ran.push({ kind, tenantId: job.ctx.tenantId });
      await job.step("work", async () => {
        throw fail();
      });
    },
  };
}

const overflow = () => {
  const recurse = (n: number): number => recurse(n + 1) + 1;
  return recurse(0);
};

const HANDLERS: JobHandler[] = [
  failing("test_stack_overflow", () => {
    try {
      overflow();
    } catch (error) {
      return error;
    }
  }),
  failing("test_type_error", () => new TypeError("Cannot read properties of undefined (reading 'length')")),
  failing("test_unprocessable", () => new UnprocessableDocumentError("The document is nested too deeply.")),
  failing("test_connection_reset", () => new Error("Failed query", { cause: Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }) })),
  {
    kind: "test_ok",
    async run(job: RunningJob) {
      ran.push({ kind: "test_ok", tenantId: job.ctx.tenantId });
      await job.complete({ ok: true });
    },
  },
];

describe.each(backends)("job runner policy on $name", (baseBackend) => {
  let fence: TestFence;
  let db: Database;
  let runner: JobRunner;
  let drop: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    const isolated = await isolatedBackend(baseBackend, "fence_job_runner");
    drop = isolated.drop;
    fence = await TestFence.start(isolated.backend, { env: { FENCE_JOB_WORKERS: "0" } });
    db = fence.fence.db;
    const options = { workers: 0, reservedWorkers: 0, leaseMs: 30_000, pollMs: 50, retryBaseMs: 60_000 };
    runner = new JobRunner(db, new FairScheduler(db, { leaseMs: options.leaseMs }), HANDLERS, createLogger("silent"), options);
  });
  afterAll(async () => {
    await fence?.close();
    await drop();
  });

  async function tenant(): Promise<{ t: TestTenant; ctx: TenantContext }> {
    const t = await fence.createTenant(`runner-${randomUUID().slice(0, 8)}`, "enterprise");
    return { t, ctx: await authenticateTenantKey(db, t.key, `test-${randomUUID()}`) };
  }

  async function enqueue(ctx: TenantContext, kinds: string[]): Promise<string[]> {
    const newJobs: NewJob[] = kinds.map((kind, n) => ({ kind, priority: "bulk", input: { n } }));
    const { jobs } = await fence.fence.jobs.enqueue(ctx, newJobs, randomUUID());
    return jobs.map((j) => j.id);
  }

  async function state(id: string) {
    const [row] = await db.asPlatformAdmin("test-read-job", (tx) =>
      queryRows<{ status: string; attempts: number; error_code: string | null }>(
        tx,
        sql`SELECT status, attempts, error_code FROM jobs WHERE id = ${id}`,
      ),
    );
    return row!;
  }

  it("fails a job after one attempt on a deterministic internal error; retries a connection error", async () => {
    const { t, ctx } = await tenant();
    const [overflowJob, typeErrorJob, unprocessableJob, resetJob] = await enqueue(ctx, [
      "test_stack_overflow",
      "test_type_error",
      "test_unprocessable",
      "test_connection_reset",
    ]);
    expect(await runner.runAvailable(10, Number.POSITIVE_INFINITY, { tenantId: t.id })).toBe(4);

    expect(await state(overflowJob!)).toEqual({ status: "failed", attempts: 1, error_code: "internal_error" });
    expect(await state(typeErrorJob!)).toEqual({ status: "failed", attempts: 1, error_code: "internal_error" });
    expect(await state(unprocessableJob!)).toEqual({ status: "failed", attempts: 1, error_code: "unprocessable_document" });
    // Requeued for later (the backoff here is a minute): it may pass when the connection is back.
    expect(await state(resetJob!)).toEqual({ status: "queued", attempts: 1, error_code: "internal_error" });
  });

  it("runs only the requesting tenant's jobs after its 202; the others stay queued for the cron run", async () => {
    const a = await tenant();
    const b = await tenant();
    // A's jobs are older: an unfiltered claim would take them first.
    const aJobs = await enqueue(a.ctx, ["test_ok", "test_ok", "test_ok"]);
    const bJobs = await enqueue(b.ctx, ["test_ok", "test_ok"]);
    ran.length = 0;

    expect(await runner.runAvailable(10, Number.POSITIVE_INFINITY, { tenantId: b.t.id })).toBe(2);
    expect(ran).toEqual(bJobs.map(() => ({ kind: "test_ok", tenantId: b.t.id })));
    for (const id of bJobs) expect((await state(id)).status).toBe("succeeded");
    for (const id of aJobs) expect(await state(id)).toMatchObject({ status: "queued", attempts: 0 });

    // The cron run (no tenant) takes every tenant's due jobs, each run as its own tenant.
    ran.length = 0;
    expect(await runner.runAvailable(10, Number.POSITIVE_INFINITY, {})).toBe(3);
    expect(ran).toEqual(aJobs.map(() => ({ kind: "test_ok", tenantId: a.t.id })));
  });
});
