import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectRateLimited, uniquePlanName, type RefusalBody } from "../../support/admission-helpers.js";
import { CheapEmbeddings } from "../../support/cheap-embeddings.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import type { LogLine } from "../../support/log-line.js";
import { createLogger } from "../../../src/observability/logger.js";

/**
 * Issue 16, "refusals cost next to nothing": once this instance has seen a tenant's window refuse,
 * the tenant's further requests are refused by `knownRefusals` before authentication, the body or
 * a counter — with the same answer admission gives. The observable that tells the two paths apart
 * is AdmissionController.admit: the fast path never calls it. A plan change (new limit) or a
 * revocation ends the fast refusals at once.
 */
const nodeBackends = backends.filter((b) => b.name !== "worker");

describe.each(nodeBackends)("refusals already on record ($name)", (backend) => {
  let fence: TestFence;
  let admits = 0;
  const logged: string[] = [];

  beforeAll(async () => {
    fence = await TestFence.start(backend, {
      env: { FENCE_JOB_WORKERS: "0" },
      embeddings: new CheapEmbeddings(),
      logger: createLogger("info", { write: (line: string) => void logged.push(line) }),
    });
    const admission = fence.fence.admission;
    const admit = admission.admit.bind(admission);
    admission.admit = (...args) => (admits++, admit(...args));
  });
  afterAll(async () => {
    await fence?.close();
  });

  async function tenantOnPlan(requestsPerMinute: number): Promise<{ tenant: TestTenant; plan: string }> {
    const plan = uniquePlanName("known");
    await putPlan(plan, requestsPerMinute);
    const tenant = await fence.createTenant(undefined, plan);
    return { tenant, plan };
  }

  async function putPlan(plan: string, requestsPerMinute: number): Promise<void> {
    const res = await fence.admin("PUT", `/plans/${plan}`, { tokens_per_day: null, tokens_per_month: null, spend_per_month_micros: null, requests_per_minute: requestsPerMinute });
    expect(res.status).toBeLessThan(300);
  }

  const search = (tenant: TestTenant) => fence.request("POST", "/v1/search", { key: tenant.key, json: { query: "refund window" } });

  it("answers the same 429 without admitting, until the plan's limit changes", async () => {
    const { tenant, plan } = await tenantOnPlan(2);
    for (let i = 0; i < 2; i++) expect((await search(tenant)).status).toBe(200);
    const first = await search(tenant); // admission refuses: the window is now on record
    const firstBody = await expectRateLimited(first, "rate_limit");
    const before = admits;
    const later: RefusalBody[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await search(tenant);
      expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(res.headers.get("ratelimit-limit")).toBe(first.headers.get("ratelimit-limit"));
      expect(res.headers.get("ratelimit-remaining")).toBe("0");
      expect(res.headers.get("x-request-id")).toBeTruthy();
      later.push(await expectRateLimited(res, "rate_limit"));
    }
    expect(admits - before, "refusals that went through admission").toBe(0);
    // Sampled with the first refusal's line (same kind), then counted in the "requests repeated"
    // line a second later, which names the tenant and key as any other line does.
    const fastLines = () =>
      logged
        .map((line) => JSON.parse(line) as LogLine & { refused_on_record?: boolean })
        .filter((l) => l.msg === "requests repeated" && l.status === 429 && l.refused_on_record === true);
    for (let waited = 0; fastLines().length === 0 && waited < 3000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    expect(fastLines()).toHaveLength(1);
    expect(fastLines()[0]).toMatchObject({ tenant_id: tenant.id, key_id: tenant.keyId, environment: "prod", error_code: "rate_limited", route: "/v1/search" });
    expect(fastLines()[0]!.repeated).toBeGreaterThanOrEqual(20);
    for (const body of later) {
      expect({ ...body.error, request_id: undefined, details: { ...body.error.details, retry_after_seconds: 0 } }).toEqual({
        ...firstBody.error,
        request_id: undefined,
        details: { ...firstBody.error.details, retry_after_seconds: 0 },
      });
    }

    // A higher limit is a different window: the next request is admitted at once.
    await putPlan(plan, 100);
    expect((await search(tenant)).status).toBe(200);
    expect(admits - before).toBe(1);
  });

  it("never answers a revoked key, or a tenant key on an admin route, with the refusal on record", async () => {
    const { tenant } = await tenantOnPlan(1);
    expect((await search(tenant)).status).toBe(200);
    await expectRateLimited(await search(tenant), "rate_limit");
    expect((await fence.request("GET", "/v1/admin/tenants", { key: tenant.key })).status).toBe(401);
    expect((await fence.admin("DELETE", `/tenants/${tenant.id}/keys/${tenant.keyId}`)).status).toBe(204);
    const res = await search(tenant);
    expect(res.status).toBe(401);
  });

  it("summarises fast refusals of chats into the minute's refusal run", async () => {
    const { tenant } = await tenantOnPlan(1);
    const chat = () => fence.request("POST", "/v1/chat", { key: tenant.key, json: { question: "Refund window?" } });
    expect((await chat()).status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await chat()).status);
    expect(statuses).toEqual([429, 429, 429, 429, 429]);
    await fence.fence.runs.settled(tenant.id);
    const listed = await fence.admin("GET", `/tenants/${tenant.id}/runs?status=refused&kind=chat`);
    const runs = ((await listed.json()) as { runs: { steps: { name: string; detail?: { refused_requests?: number } }[] }[] }).runs;
    const counted = runs.filter((r) => r.steps[0]?.name === "admission").reduce((n, r) => n + Number(r.steps[0]!.detail!.refused_requests), 0);
    expect(counted).toBe(5);
  });
});
