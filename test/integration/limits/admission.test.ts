import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  drain,
  expectOverloaded,
  expectRateLimited,
  LONG_ANSWER,
  readUntil,
  redisReachable,
  TEST_REDIS_URL,
  uniquePlanName,
  waitForCount,
} from "../../support/admission-helpers.js";
import { startFakeOpenAI, type FakeOpenAI } from "../../support/fake-openai.js";
import { freePort, spawnFence } from "../../support/fence-process.js";
import { backends, serveOnLoopback, TestFence, type TestTenant } from "../../support/harness.js";
import { eventually, putTenantOnPlan } from "../../support/metering-helpers.js";
import { startTcpProxy, type TcpProxy } from "../../support/tcp-proxy.js";
import type { ChatBody, IssuedKeyJson } from "../../support/api-types.js";

/**
 * Request admission, in process: per-tenant requests per minute and requests in flight from the
 * plan (429 with a reason and RateLimit-* headers), the instance's ceiling (503), slots freed when
 * a response or a stream ends or is abandoned, and plan changes applied to the next request.
 * Every case runs with counters in memory and, when Redis is reachable, in Redis.
 */
const redisUp = await redisReachable();
const stores = [
  { store: "memory", env: {} as Record<string, string> },
  ...(redisUp ? [{ store: "redis", env: { REDIS_URL: TEST_REDIS_URL } }] : []),
];
const variants = backends.flatMap((backend) => stores.map((s) => ({ ...s, backend, label: `${backend.name} + ${s.store} counters` })));
const DOC = { title: "Refund policy", text: "Customers can request a refund within 30 days of purchase. Refunds go back to the original card." };
let questionNo = 0;
/** A fresh relevant question each time, so no answer comes from the answer cache. */
const question = () => `How long is the refund window for customers? (${++questionNo})`;

describe.each(variants)("request admission on $label", ({ backend, env }) => {
  let llm: FakeOpenAI;
  let fence: TestFence;
  let server: { url: string; close(): Promise<void> };
  const list = (t: TestTenant) => fence.request("GET", "/v1/documents", { key: t.key });
  const chat = (t: TestTenant) => fence.request("POST", "/v1/chat", { key: t.key, json: { question: question() } });
  const streamChat = (t: TestTenant, signal?: AbortSignal) =>
    fetch(`${server.url}/v1/chat`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json" },
      body: JSON.stringify({ question: question(), stream: true }),
      signal,
    });
  const chatRequests = () => llm.requests.filter((r) => r.path === "/v1/chat/completions").length;
  /** A tenant on a fresh plan with the given limits (unset = unlimited), with one document if asked. */
  async function tenantOnPlan(limits: { requestsPerMinute?: number; tokensPerMinute?: number; maxConcurrency?: number }, withDocument = false) {
    const tenant = await fence.createTenant();
    const plan = uniquePlanName("t");
    await putTenantOnPlan(fence, tenant, plan, limits);
    if (withDocument) await fence.upload(tenant, DOC);
    return { tenant, plan };
  }

  beforeAll(async () => {
    llm = await startFakeOpenAI();
    fence = await TestFence.start(backend, { env: { ...env, LLM_BASE_URL: llm.url, LLM_MODEL: "fake-model" } });
    server = await serveOnLoopback(fence.fence);
  });
  afterAll(async () => {
    await server?.close();
    await fence?.close();
    await llm?.close();
  });

  it("admits requests_per_minute requests with RateLimit headers, then 429 rate_limit; another tenant is unaffected", async () => {
    const { tenant, plan } = await tenantOnPlan({ requestsPerMinute: 5 });
    for (let i = 0; i < 5; i++) {
      const res = await list(tenant);
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit-limit")).toBe("5");
      expect(res.headers.get("ratelimit-remaining")).toBe(String(4 - i));
      expect(Number(res.headers.get("ratelimit-reset"))).toBeGreaterThanOrEqual(1);
    }
    const refused = await list(tenant);
    const body = await expectRateLimited(refused, "rate_limit");
    expect(body.error.details!.retry_after_seconds).toBeLessThanOrEqual(60);
    expect(refused.headers.get("ratelimit-limit")).toBe("5");
    expect(refused.headers.get("ratelimit-remaining")).toBe("0");
    expect(Number(refused.headers.get("ratelimit-reset"))).toBeGreaterThanOrEqual(1);

    // Same plan, own counter: the neighbour still has its whole allowance.
    const neighbour = await fence.createTenant();
    await putTenantOnPlan(fence, neighbour, plan, { requestsPerMinute: 5 });
    const res = await list(neighbour);
    expect(res.status).toBe(200);
    expect(res.headers.get("ratelimit-remaining")).toBe("4");
    expect((await list(tenant)).status).toBe(429);
  });

  it("applies a raised requests_per_minute to the next request, without a restart", async () => {
    const { tenant, plan } = await tenantOnPlan({ requestsPerMinute: 2 });
    expect((await list(tenant)).status).toBe(200);
    expect((await list(tenant)).status).toBe(200);
    await expectRateLimited(await list(tenant), "rate_limit");
    await putTenantOnPlan(fence, tenant, plan, { requestsPerMinute: 10 });
    const res = await list(tenant);
    expect(res.status).toBe(200);
    expect(res.headers.get("ratelimit-limit")).toBe("10");
  });

  it("refuses with 429 token_limit once the plan's tokens per minute are used by chats; another tenant is unaffected", async () => {
    const { tenant } = await tenantOnPlan({ tokensPerMinute: 50 }, true);
    const other = await tenantOnPlan({ tokensPerMinute: 50 }, true);
    // The first chat is admitted (nothing used yet) and its settled usage (well over 50 tokens:
    // the prompt carries the retrieved passages) uses up the minute.
    const first = await chat(tenant);
    expect(first.status).toBe(200);
    const [charged] = llm.charges.slice(-1);
    expect(charged!.prompt_tokens + charged!.completion_tokens).toBeGreaterThan(50);
    const before = chatRequests();
    const refused = await chat(tenant);
    const body = await expectRateLimited(refused, "token_limit");
    expect(body.error.message).toMatch(/tokens-per-minute/);
    expect(refused.headers.get("ratelimit-limit")).toBe("50");
    expect(refused.headers.get("ratelimit-remaining")).toBe("0");
    expect(Number(refused.headers.get("retry-after"))).toBeLessThanOrEqual(60);
    expect(chatRequests()).toBe(before); // refused before any provider call
    // Listing is refused too (the limit is on the tenant), but another tenant's chats go through.
    expect((await list(tenant)).status).toBe(429);
    expect((await chat(other.tenant)).status).toBe(200);
  });

  it("counts a key's own requests_per_minute besides the plan's: that key is refused, the tenant's other key is not", async () => {
    const { tenant } = await tenantOnPlan({ requestsPerMinute: 100 });
    const res = await fence.admin("POST", `/tenants/${tenant.id}/keys`, { name: "batch-script", requests_per_minute: 2 });
    expect(res.status).toBe(201);
    const limitedKey = (await res.json()) as IssuedKeyJson;
    expect(limitedKey.requests_per_minute).toBe(2);
    const limited = { ...tenant, key: limitedKey.key };
    for (let i = 0; i < 2; i++) {
      const ok = await list(limited);
      expect(ok.status).toBe(200);
      expect(ok.headers.get("ratelimit-limit")).toBe("2");
    }
    await expectRateLimited(await list(limited), "rate_limit");
    const unlimitedKey = await list(tenant);
    expect(unlimitedKey.status).toBe(200);
    expect(unlimitedKey.headers.get("ratelimit-limit")).toBe("100");
    expect(Number(unlimitedKey.headers.get("ratelimit-remaining"))).toBe(96); // all four requests counted for the tenant
    const invalid = await fence.admin("POST", `/tenants/${tenant.id}/keys`, { name: "bad", requests_per_minute: 0 });
    expect(invalid.status).toBe(400);
  });

  it("refuses a second request in flight with 429 concurrency_limit, lets other tenants through, frees the slot after", async () => {
    const { tenant } = await tenantOnPlan({ maxConcurrency: 1 }, true);
    const neighbour = await fence.createTenant();
    const before = chatRequests();
    const release = llm.holdChat();
    let held: Response | Promise<Response> | undefined;
    try {
      held = chat(tenant);
      await waitForCount(chatRequests, before + 1);
      await expectRateLimited(await list(tenant), "concurrency_limit");
      await expectRateLimited(await chat(tenant), "concurrency_limit");
      expect((await list(neighbour)).status).toBe(200);
    } finally {
      release();
    }
    const answered = await held!;
    expect(answered.status).toBe(200);
    expect(((await answered.json()) as ChatBody).mode).toBe("llm");
    expect((await list(tenant)).status).toBe(200);
    expect((await list(tenant)).status).toBe(200);
  });

  describe("streamed chats", () => {
    let tenant: TestTenant;
    beforeAll(async () => {
      ({ tenant } = await tenantOnPlan({ maxConcurrency: 1 }, true));
      llm.setAnswer(() => LONG_ANSWER);
      llm.setStreamDelay(30);
    });
    afterAll(() => {
      llm.setStreamDelay(0);
      llm.setAnswer((prompt) => (prompt.includes('<document id="1"') ? "The answer is in [1]." : "I don't know based on your documents."));
    });

    it("hold the slot while the stream is open and free it when the stream ends", async () => {
      const res = await streamChat(tenant);
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      const reader = await readUntil(res, "event: token");
      await expectRateLimited(await list(tenant), "concurrency_limit");
      await drain(reader);
      expect((await list(tenant)).status).toBe(200);
    });

    it("free the slot when the client abandons the stream mid-way", async () => {
      // Slow enough that the whole answer would take 6 s: a slot freed within 2 s was freed by the abort.
      llm.setStreamDelay(200);
      try {
        const abort = new AbortController();
        const res = await streamChat(tenant, abort.signal);
        await readUntil(res, "event: token");
        await expectRateLimited(await list(tenant), "concurrency_limit");
        const abortedAt = Date.now();
        abort.abort();
        // The server notices the closed socket asynchronously: poll briefly.
        const status = await eventually(async () => {
          const s = (await list(tenant)).status;
          return s === 200 ? s : undefined;
        }, 2000);
        expect(status).toBe(200);
        expect(Date.now() - abortedAt).toBeLessThan(2000);
      } finally {
        llm.setStreamDelay(30);
      }
    });
  });

  describe("with FENCE_MAX_IN_FLIGHT=1", () => {
    let small: TestFence;
    beforeAll(async () => {
      small = await TestFence.start(backend, { env: { ...env, LLM_BASE_URL: llm.url, LLM_MODEL: "fake-model", FENCE_MAX_IN_FLIGHT: "1" } });
    });
    afterAll(async () => {
      await small?.close();
    });

    it("sheds every other request with 503 overloaded while one is in flight", async () => {
      const a = await small.createTenant();
      const b = await small.createTenant();
      await small.upload(a, DOC);
      const before = chatRequests();
      const release = llm.holdChat();
      let held: Response | Promise<Response> | undefined;
      try {
        held = small.request("POST", "/v1/chat", { key: a.key, json: { question: question() } });
        await waitForCount(chatRequests, before + 1);
        await expectOverloaded(await small.request("GET", "/v1/documents", { key: b.key }));
        await expectOverloaded(await small.request("GET", "/v1/documents", { key: a.key }));
        // Operations and admin endpoints are not tenant traffic and stay available.
        expect((await small.request("GET", "/readyz")).status).toBe(200);
      } finally {
        release();
      }
      expect((await held!).status).toBe(200);
      expect((await small.request("GET", "/v1/documents", { key: b.key })).status).toBe(200);
    });
  });
});

describe.skipIf(!redisUp)(`Redis counters at start-up${redisUp ? "" : ` (skipped: no Redis reachable at ${TEST_REDIS_URL})`}`, () => {
  it("refuses to start when REDIS_URL points at a closed port", async () => {
    const closedPort = await freePort();
    const database: Record<string, string> = process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : { FENCE_DATA_DIR: "memory://" };
    const child = await spawnFence({ ...database, REDIS_URL: `redis://127.0.0.1:${closedPort}` });
    try {
      const code = await Promise.race([child.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 30_000))]);
      expect(code, child.output()).toBe(1);
      expect(child.output()).toMatch(/Fence failed to start: Cannot connect to Redis at REDIS_URL/);
      expect(await fetch(`${child.url}/readyz`).then(() => "answered", () => "nobody listening")).toBe("nobody listening");
    } finally {
      await child.stop();
    }
  });
});

/** Redis reached through a loopback proxy, so the test can slow it down or take it away. */
describe.skipIf(!redisUp)("Redis counters behind a proxy (slow, then gone)", () => {
  const backend = backends.at(-1)!;
  let proxy: TcpProxy;
  let fence: TestFence;
  let small: TestFence;
  const list = (f: TestFence, t: TestTenant) => f.request("GET", "/v1/documents", { key: t.key });

  beforeAll(async () => {
    const { hostname, port } = new URL(TEST_REDIS_URL);
    proxy = await startTcpProxy({ host: hostname, port: Number(port || 6379) });
    const env = { REDIS_URL: `redis://127.0.0.1:${proxy.port}` };
    fence = await TestFence.start(backend, { env });
    small = await TestFence.start(backend, { env: { ...env, FENCE_MAX_IN_FLIGHT: "1" } });
  });
  afterAll(async () => {
    await fence?.close();
    await small?.close();
    await proxy?.close();
  });

  it("falls back to the instance's own counters at once when Redis goes away, and back to Redis when it returns", async () => {
    const tenant = await fence.createTenant();
    await putTenantOnPlan(fence, tenant, uniquePlanName("fallback"), { requestsPerMinute: 3 });
    // One request while Redis is up verifies the key (uncached, it asks every shard on Citus: over
    // a second on a loaded machine), so the timings below are the fallback's alone. Redis counts it.
    expect((await list(fence, tenant)).status).toBe(200);
    await proxy.cut();
    try {
      const timings: number[] = [];
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const t0 = Date.now();
        const res = await list(fence, tenant);
        timings.push(Date.now() - t0);
        statuses.push(res.status);
        if (res.status === 429) await expectRateLimited(res, "rate_limit");
      }
      // The limit still holds (in this instance's memory), and nobody waits for a dead Redis.
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect(Math.max(...timings), `latencies ${timings.join(",")} ms`).toBeLessThan(1000);
    } finally {
      await proxy.restore();
    }
    // Redis never saw those three requests, only the first one: once it is used again, the tenant
    // has the rest of its allowance there (its local counter would still refuse).
    const res = await eventually(async () => {
      const r = await list(fence, tenant);
      return r.status === 200 ? r : undefined;
    }, 5000);
    expect(res.headers.get("ratelimit-remaining")).toBe("1");
  });
});
