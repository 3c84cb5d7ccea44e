import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { usageCounters } from "../../../src/db/schema.js";
import { periodsOf } from "../../../src/metering/ledger.js";
import { countTenantRows } from "../../support/api-contract.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { listJobs } from "../../support/job-helpers.js";
import { isolatedBackend } from "../../support/scratch-database.js";
import { UNLIMITED_PLAN } from "../../support/unlimited-plan.js";
import type { ErrorBody, ErrorBodyWith, PlanJson } from "../../support/api-types.js";

/**
 * Issue 14, row 13: a tenant's queue is bounded when it uploads, not when its jobs run. Per plan,
 * `max_queued_jobs` unfinished jobs and `max_queued_bytes` of kept uploads (set through the admin
 * plans API here); past either, an async upload or batch is refused with 429 `rate_limited`,
 * reason `queue_full` and Retry-After, and stores nothing. A tenant whose budget is spent is
 * refused (402) before anything is queued. No job worker runs (FENCE_JOB_WORKERS=0), so what is
 * queued stays queued; on Postgres the suite has a scratch database, so no other suite's workers
 * drain it either.
 */
describe.each(backends)("queue caps at upload on $name", (baseBackend) => {
  let fence: TestFence;
  let drop: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    const isolated = await isolatedBackend(baseBackend, "fence_queue_caps");
    drop = isolated.drop;
    fence = await TestFence.start(isolated.backend, { env: { FENCE_JOB_WORKERS: "0" } });
  });
  afterAll(async () => {
    await fence?.close();
    await drop();
  });

  /** A tenant on a plan of its own, made and edited through the admin API. */
  async function tenantWithPlan(settings: Record<string, unknown>): Promise<TestTenant> {
    const plan = `caps-${randomUUID().slice(0, 8)}`;
    const put = await fence.admin("PUT", `/plans/${plan}`, { ...UNLIMITED_PLAN, ...settings });
    expect(put.status, await put.clone().text()).toBe(201);
    expect(await put.json()).toMatchObject(settings);
    return fence.createTenant(plan, plan);
  }

  const queueOne = (tenant: TestTenant, text: string) =>
    fence.request("POST", "/v1/documents", { key: tenant.key, json: { title: "Queued", text }, headers: { prefer: "respond-async" } });
  const queueBatch = (tenant: TestTenant, texts: string[]) =>
    fence.request("POST", "/v1/documents/batch", { key: tenant.key, json: { documents: texts.map((text, i) => ({ title: `Doc ${i}`, text })) } });
  const jobsOf = (tenant: TestTenant) => listJobs(async (path) => fence.request("GET", path, { key: tenant.key }));

  async function expectQueueFull(res: Response): Promise<void> {
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    const body = (await res.json()) as ErrorBodyWith<{ reason: string; retry_after_seconds: number }>;
    expect(body.error.code).toBe("rate_limited");
    expect(body.error.details).toMatchObject({ reason: "queue_full", retry_after_seconds: Number(res.headers.get("retry-after")) });
  }

  it("refuses an upload past max_queued_jobs with 429 queue_full, storing nothing; room comes back when a job ends", async () => {
    const tenant = await tenantWithPlan({ max_queued_jobs: 3, max_queued_bytes: null });
    for (let i = 0; i < 2; i++) expect((await queueOne(tenant, `Document number ${i}.`)).status).toBe(202);
    // A batch that would take the queue from 2 to 4 is refused whole.
    await expectQueueFull(await queueBatch(tenant, ["Batch one.", "Batch two."]));
    expect((await queueOne(tenant, "Document number 2.")).status).toBe(202);
    await expectQueueFull(await queueOne(tenant, "One too many."));

    const jobs = await jobsOf(tenant);
    expect(jobs.map((j) => j.status)).toEqual(["queued", "queued", "queued"]);
    expect((await countTenantRows(fence, tenant.id)).documents).toBe(0);

    // A cancelled job is no longer queued: its place is free again.
    const cancel = await fence.request("POST", `/v1/jobs/${jobs[0]!.id}/cancel`, { key: tenant.key });
    expect(cancel.status).toBe(200);
    expect((await queueOne(tenant, "Now there is room.")).status).toBe(202);
    await expectQueueFull(await queueOne(tenant, "And now there is not."));
  });

  it("counts queued upload bytes against max_queued_bytes; a request larger than the whole cap is 413", async () => {
    const tenant = await tenantWithPlan({ max_queued_jobs: null, max_queued_bytes: 1000 });
    expect((await queueOne(tenant, "a".repeat(600))).status).toBe(202);
    await expectQueueFull(await queueOne(tenant, "b".repeat(600)));
    expect((await queueOne(tenant, "c".repeat(300))).status).toBe(202);
    const tooLarge = await queueOne(tenant, "d".repeat(1500));
    expect(tooLarge.status).toBe(413);
    expect(((await tooLarge.json()) as ErrorBody).error.code).toBe("payload_too_large");
    expect(await jobsOf(tenant)).toHaveLength(2);
  });

  it("admits exactly the cap when uploads race: 12 at once against max_queued_jobs 3", async () => {
    const tenant = await tenantWithPlan({ max_queued_jobs: 3, max_queued_bytes: null });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => queueOne(tenant, `Racing upload ${i}.`)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(9);
    expect(await jobsOf(tenant)).toHaveLength(3);
  });

  it("refuses an upload with 402 when the tenant's budget is already spent, before anything is queued", async () => {
    const tenant = await tenantWithPlan({ tokens_per_day: 500 });
    expect((await queueOne(tenant, "Queued while there is budget.")).status).toBe(202);
    // The day's tokens are used up (as metering would have counted them).
    await fence.fence.db.asPlatformAdmin("test: budget spent", (tx) =>
      tx.insert(usageCounters).values({ tenantId: tenant.id, period: periodsOf(new Date()).day, tokens: 500, costMicros: 0 }),
    );
    for (const res of [await queueOne(tenant, "One more."), await queueBatch(tenant, ["Batch one.", "Batch two."])]) {
      expect(res.status).toBe(402);
      const body = (await res.json()) as ErrorBodyWith<{ budget: string }>;
      expect(body.error).toMatchObject({ code: "budget_exceeded", details: { budget: "tokens_per_day" } });
    }
    expect(await jobsOf(tenant)).toHaveLength(1);
  });

  it("seeds caps on every plan and keeps them editable: the admin API shows and changes them", async () => {
    for (const name of ["free", "pro", "enterprise"]) {
      const plan = (await (await fence.admin("GET", `/plans/${name}`)).json()) as PlanJson;
      expect(plan.max_queued_jobs).toBeGreaterThan(0);
      expect(plan.max_queued_bytes).toBeGreaterThan(0);
    }
    const tenant = await tenantWithPlan({ max_queued_jobs: 1 });
    expect((await queueOne(tenant, "First.")).status).toBe(202);
    await expectQueueFull(await queueOne(tenant, "Second."));
    const raised = await fence.admin("PUT", `/plans/${tenant.name}`, { ...UNLIMITED_PLAN, max_queued_jobs: 2 });
    expect(raised.status).toBe(200);
    expect((await queueOne(tenant, "Second, after the cap was raised.")).status).toBe(202);
  });
});
