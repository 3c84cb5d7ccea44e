import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectRateLimited, redisReachable, TEST_REDIS_URL, uniquePlanName, waitForCount } from "../../support/admission-helpers.js";
import { startFakeOpenAI, type FakeOpenAI } from "../../support/fake-openai.js";
import { startFenceProcess, type FenceProcess } from "../../support/fence-process.js";
import { ADMIN_KEY } from "../../support/harness.js";
import type { ErrorBody, IssuedKeyJson, TenantJson } from "../../support/api-types.js";

/**
 * Three real Fence processes on one Postgres and one Redis, as behind a load balancer: a tenant's
 * requests per minute and requests in flight hold in total, not per process, and a key revoked
 * through one instance is refused by the others on the very next request.
 */
const redisUp = await redisReachable();
const skipReason = !process.env.DATABASE_URL
  ? " (skipped: needs DATABASE_URL — PGlite cannot be shared by processes)"
  : !redisUp
    ? ` (skipped: no Redis reachable at ${TEST_REDIS_URL})`
    : "";
const DOC = { title: "Refund policy", text: "Customers can request a refund within 30 days of purchase. Refunds go back to the original card." };

describe.skipIf(skipReason !== "")(`three Fence instances sharing Postgres and Redis${skipReason}`, () => {
  let llm: FakeOpenAI;
  const instances: FenceProcess[] = [];

  const call = (i: number, method: string, path: string, key: string, json?: unknown) =>
    fetch(`${instances[i % instances.length]!.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(json === undefined ? {} : { "content-type": "application/json" }) },
      body: json === undefined ? undefined : JSON.stringify(json),
    });
  async function admin<T>(method: string, path: string, json?: unknown): Promise<T> {
    const res = await call(0, method, `/v1/admin${path}`, ADMIN_KEY, json);
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (res.status === 204 ? undefined : await res.json()) as T;
  }
  /** A tenant (created through instance 1) on a fresh plan with the given limits, and its key. */
  async function tenantOnPlan(limits: { requests_per_minute?: number; max_concurrency?: number }) {
    const plan = uniquePlanName("multi");
    await admin("PUT", `/plans/${plan}`, { tokens_per_day: null, tokens_per_month: null, spend_per_month_micros: null, ...limits });
    const tenant = await admin<TenantJson>("POST", "/tenants", { name: `multi-${plan}`, plan });
    const key = await admin<IssuedKeyJson>("POST", `/tenants/${tenant.id}/keys`, { name: "test" });
    return { id: tenant.id, key: key.key, keyId: key.id };
  }
  const chatRequests = () => llm.requests.filter((r) => r.path === "/v1/chat/completions").length;

  beforeAll(async () => {
    llm = await startFakeOpenAI();
    const env = {
      DATABASE_URL: process.env.DATABASE_URL!,
      REDIS_URL: TEST_REDIS_URL,
      LLM_BASE_URL: llm.url,
      LLM_MODEL: "fake-model",
    };
    // One at a time: migrations run at start-up, and three model loads at once crowd two cores.
    for (let i = 0; i < 3; i++) instances.push(await startFenceProcess(env));
  }, 90_000);
  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
    await llm?.close();
  });

  it("holds requests_per_minute in total over all instances: 60 concurrent requests, exactly 12 admitted", async () => {
    const tenant = await tenantOnPlan({ requests_per_minute: 12 });
    const responses = await Promise.all(Array.from({ length: 60 }, (_, i) => call(i, "GET", "/v1/documents", tenant.key)));
    const admitted = responses.filter((r) => r.status === 200);
    const refused = responses.filter((r) => r.status !== 200);
    expect(admitted).toHaveLength(12);
    expect(refused).toHaveLength(48);
    for (const res of refused) await expectRateLimited(res, "rate_limit");
    // Every instance admitted some and refused some: the counter is shared, not per process.
    for (let i = 0; i < 3; i++) {
      const mine = responses.filter((_, n) => n % 3 === i).map((r) => r.status);
      expect(mine.filter((s) => s === 429).length, `instance ${i + 1}`).toBeGreaterThan(0);
    }
    const remaining = admitted.map((r) => Number(r.headers.get("ratelimit-remaining"))).sort((a, b) => a - b);
    expect(remaining).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it("holds max_concurrency in total: three held chats on three instances, exactly two admitted", async () => {
    const tenant = await tenantOnPlan({ max_concurrency: 2 });
    const upload = await call(0, "POST", "/v1/documents", tenant.key, DOC);
    expect(upload.status).toBe(201);

    const before = chatRequests();
    const release = llm.holdChat();
    const chats = [0, 1, 2].map((i) => call(i, "POST", "/v1/chat", tenant.key, { question: `How long is the refund window? (${i})` }));
    try {
      // Two reach the provider and wait there; the third is refused at admission.
      await waitForCount(chatRequests, before + 2);
      const refused = await Promise.race([
        ...chats.map((p) => p.then((r) => (r.status === 429 ? r : new Promise<never>(() => {})))),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no chat was refused within 10 s")), 10_000)),
      ]);
      await expectRateLimited(refused, "concurrency_limit");
      // A fourth request on any instance is refused too while both are held.
      await expectRateLimited(await call(2, "GET", "/v1/documents", tenant.key), "concurrency_limit");
      expect(chatRequests()).toBe(before + 2);
    } finally {
      release();
    }
    const statuses = (await Promise.all(chats)).map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 429]);
    // Both slots are back in the shared count: two at once are admitted again, on different instances.
    const after = await Promise.all([call(1, "GET", "/v1/documents", tenant.key), call(2, "GET", "/v1/documents", tenant.key)]);
    expect(after.map((r) => r.status)).toEqual([200, 200]);
  });

  it("refuses a key revoked through instance 1 on its very next request there, and within 1 s on instances 2 and 3", async () => {
    const tenant = await tenantOnPlan({});
    // Every instance has verified the key, and keeps it in memory.
    for (let i = 0; i < 3; i++) expect((await call(i, "GET", "/v1/documents", tenant.key)).status).toBe(200);
    await admin("DELETE", `/tenants/${tenant.id}/keys/${tenant.keyId}`);
    const revokedAt = performance.now();
    const first = await call(0, "GET", "/v1/documents", tenant.key);
    expect(first.status, "instance 1, which revoked it").toBe(401);
    expect(((await first.json()) as ErrorBody).error.code).toBe("unauthorized");
    // The others learn of it from the change feed: the stated bound is 1 s (docs/limits-and-fairness.md).
    for (const i of [1, 2]) {
      let res = await call(i, "GET", "/v1/documents", tenant.key);
      while (res.status !== 401 && performance.now() - revokedAt < 1000) {
        await new Promise((r) => setTimeout(r, 20));
        res = await call(i, "GET", "/v1/documents", tenant.key);
      }
      expect(res.status, `instance ${i + 1}, ${Math.round(performance.now() - revokedAt)} ms after the revocation`).toBe(401);
      expect(((await res.json()) as ErrorBody).error.code).toBe("unauthorized");
    }
  });
});
