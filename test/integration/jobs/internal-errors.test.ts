import { randomUUID } from "node:crypto";
import { and, eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { usageEvents } from "../../../src/db/schema.js";
import { INTERNAL_ERROR_MESSAGE, UnprocessableDocumentError } from "../../../src/core/errors.js";
import { createLogger } from "../../../src/observability/logger.js";
import { databaseErrorsHolding } from "../../support/database-errors.js";
import { SwitchableEmbeddings } from "../../support/failing-embeddings.js";
import { backends, defaultEmbeddings, TestFence, type TestTenant } from "../../support/harness.js";
import { waitForJob } from "../../support/job-helpers.js";
import { isolatedBackend } from "../../support/scratch-database.js";
import type { JobJson } from "../../support/api-types.js";

/**
 * A tenant reads its job (GET /v1/jobs/:id: the error and every step), the job's run record and,
 * through reports, its usage ledger. An internal failure's own message — "Maximum call stack size
 * exceeded", or a database error quoting the statement and its parameters — must reach none of
 * them: the tenant sees `internal_error` and a fixed message, and the detail goes to the log with
 * the job id. A Fence error, written for the client, keeps its code and message.
 *
 * On a server the suite has a database of its own: the failure lives in this instance's embedding
 * provider, and another suite's job workers on a shared database would claim the job and succeed.
 */
describe.each(backends)("internal errors of a job on $name", (baseBackend) => {
  const canary = `Pipistrel-${randomUUID()}`;
  const document = `Payroll export ${canary}. ${"Each line lists a name and a salary. ".repeat(200)}`;
  const logs: string[] = [];
  let fence: TestFence;
  let tenant: TestTenant;
  let embeddings: SwitchableEmbeddings;
  let drop: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    const isolated = await isolatedBackend(baseBackend, "fence_internal_errors");
    drop = isolated.drop;
    embeddings = new SwitchableEmbeddings(await defaultEmbeddings());
    fence = await TestFence.start(isolated.backend, {
      env: { FENCE_JOB_POLL_MS: "50", FENCE_JOB_RETRY_BASE_MS: "50" },
      embeddings,
      logger: createLogger("info", { write: (line: string) => void logs.push(line) }),
    });
    tenant = await fence.createTenant(`internal-errors-${canary.slice(-6)}`, "enterprise");
  });
  afterAll(async () => {
    await fence?.close();
    await drop();
  });

  const get = async (path: string) => fence.request("GET", path, { key: tenant.key });

  /** Queues an upload whose embed step throws `error` (on every attempt), and waits for it to end. */
  async function jobFailingWith(error: Error): Promise<JobJson> {
    embeddings.failWith = error;
    try {
      const res = await fence.request("POST", "/v1/documents", {
        key: tenant.key,
        json: { title: "Payroll export", text: document },
        headers: { prefer: "respond-async" },
      });
      expect(res.status).toBe(202);
      return await waitForJob(get, ((await res.json()) as JobJson).id);
    } finally {
      embeddings.failWith = undefined;
    }
  }

  /** The job's run record (written after the job ends: poll briefly). */
  async function runOf(jobId: string): Promise<string> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await get(`/v1/runs/${encodeURIComponent(`job:${jobId}`)}`);
      if (res.status === 200) return res.text();
      if (Date.now() > deadline) throw new Error(`no run for job ${jobId}: ${res.status}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The ledger's failed embedding rows of this job's attempts, read past RLS by the platform. */
  async function ledgerErrors(jobId: string): Promise<(string | null)[]> {
    const rows = await fence.fence.db.asPlatformAdmin("test: read ledger errors", (tx) =>
      tx
        .select({ error: usageEvents.error })
        .from(usageEvents)
        .where(and(eq(usageEvents.tenantId, tenant.id), eq(usageEvents.status, "failed"), sql`${usageEvents.eventId} like ${`%${jobId}%`}`)),
    );
    return rows.map((r) => r.error);
  }

  async function expectOnlyTheSafeError(job: JobJson, leaks: string[]): Promise<void> {
    expect(job.status).toBe("failed");
    expect(job.error).toEqual({ code: "internal_error", message: INTERNAL_ERROR_MESSAGE });
    const failedSteps = job.steps.filter((s) => s.status === "failed");
    expect(failedSteps.map((s) => s.name)).toContain("embed");
    for (const step of failedSteps) expect(step.error).toBe(INTERNAL_ERROR_MESSAGE);

    const run = await runOf(job.id);
    expect(JSON.parse(run)).toMatchObject({ status: "failed", error: { code: "internal_error", message: INTERNAL_ERROR_MESSAGE } });
    const errors = await ledgerErrors(job.id);
    expect(errors.length).toBeGreaterThan(0);
    for (const error of errors) expect(error).toBe(INTERNAL_ERROR_MESSAGE);

    const visible = [JSON.stringify(job), await (await get(`/v1/jobs/${job.id}`)).text(), await (await get("/v1/jobs?limit=100")).text(), run, JSON.stringify(errors)];
    for (const text of visible) for (const leak of leaks) expect(text, leak).not.toContain(leak);
  }

  it("shows a stack overflow's message to no one but the log", async () => {
    const overflow = new RangeError(`Maximum call stack size exceeded while reading ${canary}`);
    const job = await jobFailingWith(overflow);
    await expectOnlyTheSafeError(job, [canary, "Maximum call stack"]);
    // The detail is in the log, with the job's id, for whoever runs the platform.
    const line = logs.map((l) => JSON.parse(l) as { job_id?: string; err?: { type?: string; message?: string } }).find((l) => l.job_id === job.id && l.err);
    expect(line?.err).toMatchObject({ type: "RangeError", message: expect.stringContaining("Maximum call stack size exceeded") as string });
  });

  it("shows a database error's statement and parameters to no one", async () => {
    const [uniqueViolation, , badInteger] = await databaseErrorsHolding(fence.fence.db, canary, document);
    for (const error of [uniqueViolation!, badInteger!]) {
      expect(error.message).toContain("Failed query"); // drizzle's wrapper, quoting the parameters
      const job = await jobFailingWith(error);
      await expectOnlyTheSafeError(job, [canary, "Failed query", "params:", "canary_docs", "invalid input syntax"]);
    }
  });

  it("keeps a Fence error's own code and message, written for the client", async () => {
    const job = await jobFailingWith(new UnprocessableDocumentError("The document nests too deeply to be read."));
    expect(job.error).toEqual({ code: "unprocessable_document", message: "The document nests too deeply to be read." });
    expect(job.steps.find((s) => s.status === "failed")?.error).toBe("The document nests too deeply to be read.");
  });
});
