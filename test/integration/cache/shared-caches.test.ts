import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TenantCache } from "../../../src/cache/tenant-caches.js";
import { redisReachable, TEST_REDIS_URL } from "../../support/admission-helpers.js";
import { startFakeOpenAI, type FakeOpenAI } from "../../support/fake-openai.js";
import { TestFence, type TestTenant } from "../../support/harness.js";
import { startTcpProxy, type TcpProxy } from "../../support/tcp-proxy.js";
import type { ChatBody } from "../../support/api-types.js";

/**
 * With REDIS_URL, the tenant caches are shared by every instance: an answer computed on one is a
 * hit on another, still keyed by tenant and data version (I5), and purged by tenant everywhere.
 * Two instances need one database, so this runs on Postgres only.
 */
const redisUp = await redisReachable();
const databaseUrl = process.env.DATABASE_URL;
const DOC = { title: "Refund policy", text: "Customers can request a refund within 30 days of purchase. Refunds go back to the original card." };

describe.skipIf(!redisUp || !databaseUrl)("tenant caches shared through Redis by two instances", () => {
  let llm: FakeOpenAI;
  let proxy: TcpProxy;
  let one: TestFence;
  let two: TestFence;
  let redis: Redis;
  const chatCalls = () => llm.requests.filter((r) => r.path === "/v1/chat/completions").length;
  async function ask(fence: TestFence, tenant: TestTenant, question: string) {
    const res = await fence.request("POST", "/v1/chat", { key: tenant.key, json: { question } });
    expect(res.status).toBe(200);
    return (await res.json()) as ChatBody;
  }
  const sharedKeysOf = async (tenantId: string) => redis.keys(`${TenantCache.sharedPrefix(tenantId)}*`);

  beforeAll(async () => {
    llm = await startFakeOpenAI();
    const url = new URL(TEST_REDIS_URL);
    // Instance two reaches Redis through a proxy, so the test can take Redis away from it alone.
    proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 6379) });
    const env = { LLM_BASE_URL: llm.url, LLM_MODEL: "fake-model", FENCE_JOB_WORKERS: "0" };
    one = await TestFence.start({ name: "postgres", databaseUrl }, { env: { ...env, REDIS_URL: TEST_REDIS_URL } });
    two = await TestFence.start({ name: "postgres", databaseUrl }, { env: { ...env, REDIS_URL: `redis://127.0.0.1:${proxy.port}` } });
    redis = new Redis(TEST_REDIS_URL);
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await proxy?.close();
    redis?.disconnect();
    await llm?.close();
  });

  it("serves an answer computed on one instance from the other, for the same tenant only", async () => {
    const a = await one.createTenant("shared-cache-a", "enterprise");
    const b = await one.createTenant("shared-cache-b", "enterprise");
    await one.upload(a, DOC);
    await one.upload(b, DOC);
    const question = `How long is the refund window? (${Date.now()})`;

    const first = await ask(one, a, question);
    expect(first.cached).toBe(false);
    const calls = chatCalls();
    const fromTwo = await ask(two, a, question);
    expect(fromTwo).toMatchObject({ cached: true, answer: first.answer });
    expect(chatCalls()).toBe(calls); // no provider call: the answer came from Redis

    // The same question from another tenant is that tenant's own miss (I5 across instances).
    expect((await ask(two, b, question)).cached).toBe(false);
    expect(chatCalls()).toBe(calls + 1);
    expect((await sharedKeysOf(a.id)).length).toBeGreaterThan(0);
    for (const key of await sharedKeysOf(a.id)) expect(key.startsWith(`fence:cache:${a.id}:`)).toBe(true);
  });

  it("never serves a stale answer after the tenant's documents change on another instance", async () => {
    const a = await one.createTenant("shared-cache-stale", "enterprise");
    await one.upload(a, DOC);
    const question = `What about refunds? (${Date.now()})`;
    expect((await ask(one, a, question)).cached).toBe(false);
    expect((await ask(two, a, question)).cached).toBe(true);
    await two.upload(a, { title: "Update", text: "Refunds are now possible within 60 days of purchase." });
    expect((await ask(one, a, question)).cached).toBe(false);
    expect((await ask(two, a, question)).cached).toBe(true);
  });

  it("purges a deleted tenant's shared entries", async () => {
    const a = await one.createTenant("shared-cache-purge", "enterprise");
    await one.upload(a, DOC);
    await ask(one, a, `Refund window? (${Date.now()})`);
    expect((await sharedKeysOf(a.id)).length).toBeGreaterThan(0);
    expect((await one.admin("DELETE", `/tenants/${a.id}`)).status).toBe(204);
    expect(await sharedKeysOf(a.id)).toEqual([]);
  });

  it("treats Redis going away as a cache miss: chats keep working", async () => {
    const a = await one.createTenant("shared-cache-down", "enterprise");
    await one.upload(a, DOC);
    const question = `Refunds, again? (${Date.now()})`;
    await proxy.cut();
    try {
      const calls = chatCalls();
      expect((await ask(two, a, question)).cached).toBe(false);
      expect(chatCalls()).toBe(calls + 1);
      // Its own memory level still works while Redis is away.
      expect((await ask(two, a, question)).cached).toBe(true);
    } finally {
      await proxy.restore();
    }
  });
});
