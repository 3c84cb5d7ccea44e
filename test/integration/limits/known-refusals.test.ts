import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectRateLimited, uniquePlanName, type RefusalBody } from "../../support/admission-helpers.js";
import { CheapEmbeddings } from "../../support/cheap-embeddings.js";
import { serveOnLoopback } from "../../support/fence-harness.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import type { LogLine } from "../../support/log-line.js";
import { createLogger } from "../../../src/observability/logger.js";

/**
 * Issue 16, "refusals cost next to nothing": once this instance has seen a tenant's window refuse,
 * the tenant's further requests are refused before authentication, the body or a counter — with
 * the same answer admission gives; so are unknown keys from an address it has seen blocked for
 * failed authentications. Two paths answer them, and each is tested: the app's `knownRefusals`
 * (a request handed to the app in process) and, over real HTTP on Node, the front door before
 * Hono (`FrontDoor.answered` counts what it answered). AdmissionController.admit tells the fast
 * paths from admission: they never call it. A plan change (new limit) or a revocation ends the
 * fast refusals at once.
 */
const nodeBackends = backends.filter((b) => b.name !== "worker");
const FAILURES_PER_ADDRESS = 5;

describe.each(nodeBackends)("refusals already on record ($name)", (backend) => {
  let fence: TestFence;
  let server: { url: string; close(): Promise<void> };
  let admits = 0;
  const logged: string[] = [];

  beforeAll(async () => {
    fence = await TestFence.start(backend, {
      env: { FENCE_JOB_WORKERS: "0", FENCE_TRUSTED_PROXY_HOPS: "1", FENCE_AUTH_FAILURES_PER_ADDRESS: String(FAILURES_PER_ADDRESS) },
      embeddings: new CheapEmbeddings(),
      logger: createLogger("info", { write: (line: string) => void logged.push(line) }),
    });
    const admission = fence.fence.admission;
    const admit = admission.admit.bind(admission);
    admission.admit = (...args) => (admits++, admit(...args));
    server = await serveOnLoopback(fence.fence);
  });
  afterAll(async () => {
    await server?.close();
    await fence?.close();
  });

  /** The requests of one path: handed to the app in process, or sent over HTTP through the front door. */
  type Path = "app" | "front door";
  const send = async (path: Path, method: string, url: string, init: { key?: string; json?: unknown; headers?: Record<string, string> } = {}): Promise<Response> => {
    if (path === "app") return fence.request(method, url, init);
    const headers: Record<string, string> = { ...init.headers, ...(init.key ? { authorization: `Bearer ${init.key}` } : {}) };
    if (init.json !== undefined) headers["content-type"] = "application/json";
    return fetch(server.url + url, { method, headers, body: init.json === undefined ? undefined : JSON.stringify(init.json) });
  };
  const frontDoorAnswered = () => fence.fence.frontDoor!.answered;

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

  const paths: Path[] = ["app", "front door"];

  describe.each(paths)("answered by the %s", (path) => {
    const search = (tenant: TestTenant, headers?: Record<string, string>) =>
      send(path, "POST", "/v1/search", { key: tenant.key, json: { query: "refund window" }, ...(headers ? { headers } : {}) });
    /** Runs `work`, and expects the front door to have answered `count` requests in it on its path, none on the app's. */
    async function answeredByFrontDoor<T>(count: number, work: () => Promise<T>): Promise<T> {
      const before = frontDoorAnswered();
      const result = await work();
      expect(frontDoorAnswered() - before, "requests the front door answered").toBe(path === "front door" ? count : 0);
      return result;
    }

    it("answers the same 429 without admitting, until the plan's limit changes", async () => {
      const { tenant, plan } = await tenantOnPlan(2);
      for (let i = 0; i < 2; i++) expect((await search(tenant)).status).toBe(200);
      const first = await search(tenant); // admission refuses: the window is now on record
      const firstBody = await expectRateLimited(first, "rate_limit");
      const before = admits;
      const later: RefusalBody[] = [];
      await answeredByFrontDoor(20, async () => {
        for (let i = 0; i < 20; i++) {
          const res = await search(tenant);
          expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
          expect(res.headers.get("ratelimit-limit")).toBe(first.headers.get("ratelimit-limit"));
          expect(res.headers.get("ratelimit-remaining")).toBe("0");
          expect(res.headers.get("x-request-id")).toBeTruthy();
          later.push(await expectRateLimited(res, "rate_limit"));
        }
      });
      expect(admits - before, "refusals that went through admission").toBe(0);
      // Sampled with the first refusal's line (same kind), then counted in the "requests repeated"
      // line a second later, which names the tenant and key as any other line does.
      const fastLines = () =>
        logged
          .map((line) => JSON.parse(line) as LogLine & { refused_on_record?: boolean })
          .filter((l) => l.msg === "requests repeated" && l.status === 429 && l.refused_on_record === true && l.tenant_id === tenant.id);
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
      expect((await answeredByFrontDoor(0, () => search(tenant))).status).toBe(200);
      expect(admits - before).toBe(1);
    });

    it("never answers a revoked key, or a tenant key on an admin route, with the refusal on record", async () => {
      const { tenant } = await tenantOnPlan(1);
      expect((await search(tenant)).status).toBe(200);
      await expectRateLimited(await search(tenant), "rate_limit");
      await answeredByFrontDoor(0, async () => {
        expect((await send(path, "GET", "/v1/admin/tenants", { key: tenant.key })).status).toBe(401);
        expect((await fence.admin("DELETE", `/tenants/${tenant.id}/keys/${tenant.keyId}`)).status).toBe(204);
        expect((await search(tenant)).status).toBe(401);
      });
    });

    it("summarises fast refusals of chats into the minute's refusal run", async () => {
      const { tenant } = await tenantOnPlan(1);
      const chat = () => send(path, "POST", "/v1/chat", { key: tenant.key, json: { question: "Refund window?" } });
      expect((await chat()).status).toBe(200);
      const statuses: number[] = [(await chat()).status]; // admission refuses: on record from now on
      await answeredByFrontDoor(4, async () => {
        for (let i = 0; i < 4; i++) statuses.push((await chat()).status);
      });
      expect(statuses).toEqual([429, 429, 429, 429, 429]);
      await fence.fence.runs.settled(tenant.id);
      const listed = await fence.admin("GET", `/tenants/${tenant.id}/runs?status=refused&kind=chat`);
      const runs = ((await listed.json()) as { runs: { steps: { name: string; detail?: { refused_requests?: number } }[] }[] }).runs;
      const counted = runs.filter((r) => r.steps[0]?.name === "admission").reduce((n, r) => n + Number(r.steps[0]!.detail!.refused_requests), 0);
      expect(counted).toBe(5);
    });

    it("refuses unknown keys from an address on record as blocked, never a known key from it or another address", async () => {
      const address = { "x-forwarded-for": `198.51.100.${path === "app" ? 21 : 22}` };
      const bogus = () => `fence_prod_${randomBytes(30).toString("base64url").replace(/[-_]/g, "x").slice(0, 40)}`;
      const tryKey = (key: string, headers = address) => send(path, "GET", "/v1/documents?limit=1", { key, headers });
      for (let i = 0; i < FAILURES_PER_ADDRESS; i++) expect((await tryKey(bogus())).status).toBe(401);
      // The next failure finds the address blocked (a counter read): from then on it is on record.
      const blocked = await tryKey(bogus());
      const blockedBody = await expectRateLimited(blocked, "rate_limit");
      const later = await answeredByFrontDoor(10, async () => {
        const bodies: RefusalBody[] = [];
        for (let i = 0; i < 10; i++) bodies.push(await expectRateLimited(await tryKey(bogus()), "rate_limit"));
        return bodies;
      });
      for (const body of later) expect(body.error.details).toEqual({ ...blockedBody.error.details, retry_after_seconds: body.error.details!.retry_after_seconds });
      await answeredByFrontDoor(0, async () => {
        const { tenant } = await tenantOnPlan(100);
        expect((await tryKey(tenant.key)).status, "a valid key from the blocked address").toBe(200);
        expect((await tryKey(bogus(), { "x-forwarded-for": "198.51.100.99" })).status, "another address").toBe(401);
      });
    });
  });

  it("gives the same answer on both paths: status, headers and body", async () => {
    const { tenant } = await tenantOnPlan(1);
    expect((await send("app", "POST", "/v1/search", { key: tenant.key, json: { query: "refund window" } })).status).toBe(200);
    await expectRateLimited(await send("app", "POST", "/v1/search", { key: tenant.key, json: { query: "refund window" } }), "rate_limit");
    const headers = { "x-request-id": "same-request-id-1234" };
    const answer = async (path: Path) => {
      const res = await send(path, "POST", "/v1/search", { key: tenant.key, json: { query: "refund window" }, headers });
      return { status: res.status, body: (await res.json()) as RefusalBody, headers: Object.fromEntries(res.headers) };
    };
    const viaApp = await answer("app");
    const answeredBefore = frontDoorAnswered();
    const viaDoor = await answer("front door");
    expect(frontDoorAnswered() - answeredBefore).toBe(1);
    // Seconds to wait may tick down between the two requests.
    const settle = (answer: typeof viaApp) => ({
      ...answer,
      body: { error: { ...answer.body.error, details: { ...answer.body.error.details, retry_after_seconds: 0 } } },
      headers: { ...answer.headers, "retry-after": "", "ratelimit-reset": "", date: "", connection: "", "keep-alive": "", "content-length": "" },
    });
    expect(settle(viaDoor)).toEqual(settle(viaApp));
    expect(viaDoor.body.error.request_id).toBe("same-request-id-1234");
  });
});
