import { createHash } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TenantCache } from "../../../src/cache/tenant-caches.js";
import { redisReachable, TEST_REDIS_URL } from "../../support/admission-helpers.js";
import { backends, isServerBackend, TestFence, type TestTenant } from "../../support/harness.js";
import type { ChatBody, IngestedDocumentJson } from "../../support/api-types.js";

/**
 * Issue 14, row 12: a document delete leaves nothing of the tenant's cached answers or query
 * embeddings reachable — not in Redis (read directly here), not in any instance's memory — and
 * shared keys are keyed hashes, not sha256 of the question that anyone reading Redis could confirm.
 */
const redisUp = await redisReachable();
/** The change feed's stated bound for another instance to see a committed change (docs/limits-and-fairness.md). */
const FEED_BOUND_MS = 1000;
const DOC = { title: "Vault", text: "The vault under the Harbourview office opens with the code TAPIR-7731 on weekdays." };

describe.skipIf(!redisUp).each(backends.filter((b) => b.name !== "worker"))("cached content after a delete, with Redis, on $name", (backend) => {
  let fence: TestFence;
  let redis: Redis;
  const keysOf = (tenantId: string) => redis.keys(`${TenantCache.sharedPrefix(tenantId)}*`);
  async function ask(on: TestFence, tenant: TestTenant, question: string): Promise<ChatBody> {
    const res = await on.request("POST", "/v1/chat", { key: tenant.key, json: { question } });
    expect(res.status).toBe(200);
    return (await res.json()) as ChatBody;
  }

  beforeAll(async () => {
    fence = await TestFence.start(backend, { env: { REDIS_URL: TEST_REDIS_URL, FENCE_JOB_WORKERS: "0" } });
    redis = new Redis(TEST_REDIS_URL);
  });
  afterAll(async () => {
    await fence?.close();
    redis?.disconnect();
  });

  it("removes the tenant's answers and query embeddings from Redis, and a repeat is a miss", async () => {
    const a = await fence.createTenant("forget-a", "enterprise");
    const b = await fence.createTenant("forget-b", "enterprise");
    const doc = await fence.upload(a, DOC);
    await fence.upload(b, DOC);
    const question = `What opens the vault? (${Date.now()})`;
    expect((await ask(fence, a, question)).cached).toBe(false);
    expect((await ask(fence, a, question)).cached).toBe(true);
    await ask(fence, b, question);

    const before = (await keysOf(a.id)).filter((k) => !k.includes("#"));
    expect(before.some((k) => k.includes(":answers:"))).toBe(true);
    expect(before.some((k) => k.includes(":query_embeddings:"))).toBe(true);
    // No key is the plain sha256 of the question or of the conversation: both would be guessable.
    const guessable = [question, JSON.stringify([{ role: "user", content: question }])].map((s) => createHash("sha256").update(s).digest("hex"));
    for (const key of before) for (const digest of guessable) expect(key).not.toContain(digest);

    expect((await fence.request("DELETE", `/v1/documents/${doc.id}`, { key: a.key })).status).toBe(204);
    expect(await keysOf(a.id)).toEqual([]);
    // The other tenant's entries are untouched.
    expect((await keysOf(b.id)).length).toBeGreaterThan(0);

    // Asked again, nothing is found: the answer is recomputed and the query embedded anew, under new keys.
    expect((await ask(fence, a, question)).cached).toBe(false);
    const after = (await keysOf(a.id)).filter((k) => !k.includes("#"));
    expect(after.some((k) => k.includes(":query_embeddings:"))).toBe(true);
    expect(after.filter((k) => before.includes(k))).toEqual([]);
  });

  it("removes them on a replacement too: a new version of a source_id leaves the old text nowhere in Redis", async () => {
    const a = await fence.createTenant("forget-replace", "enterprise");
    await fence.upload(a, { ...DOC, source_id: "vault-notes" });
    const question = `Which code opens the vault door? (${Date.now()})`;
    await ask(fence, a, question);
    expect((await keysOf(a.id)).some((k) => k.includes(":answers:"))).toBe(true);

    const replaced = await fence.request("POST", "/v1/documents", {
      key: a.key,
      json: { title: "Vault", text: "The vault is now opened with a badge; codes are retired.", source_id: "vault-notes" },
    });
    expect(replaced.status).toBe(200);
    expect(((await replaced.json()) as IngestedDocumentJson).outcome).toBe("replaced");
    const left = await keysOf(a.id);
    expect(left.filter((k) => k.includes(":answers:"))).toEqual([]);
    for (const key of left) expect(await redis.get(key) ?? "").not.toContain("TAPIR-7731");
    expect((await ask(fence, a, question)).cached).toBe(false);
  });

  it("makes another instance's in-memory copies unreachable too (two instances, one database)", async () => {
    if (!isServerBackend(backend)) return; // two instances need one shared database
    const other = await TestFence.start(backend, { env: { REDIS_URL: TEST_REDIS_URL, FENCE_JOB_WORKERS: "0" } });
    try {
      const a = await fence.createTenant("forget-two", "enterprise");
      const doc = await fence.upload(a, DOC);
      await fence.upload(a, { title: "Other", text: "The canteen serves lunch at noon." });
      const question = `Which code opens the vault? (${Date.now()})`;
      expect((await ask(other, a, question)).cached).toBe(false);
      expect((await ask(other, a, question)).cached).toBe(true); // now in `other`'s memory level
      const embeddingsHeld = other.fence.caches.queryEmbeddings.size;
      expect(embeddingsHeld).toBeGreaterThan(0);

      expect((await fence.request("DELETE", `/v1/documents/${doc.id}`, { key: a.key })).status).toBe(204);
      const deleted = performance.now();
      // `other` was not told; its memory still holds the entries. The answer is a miss at once: its
      // key carries the tenant's data version, which every chat reads from the database.
      const res = (await ask(other, a, question)) as ChatBody;
      expect(res.cached).toBe(false);
      expect(res.citations.map((c) => c.document_id)).not.toContain(doc.id);
      // The query embedding is keyed by the cache secret, which `other` holds with the tenant's
      // verified key: the rotated secret reaches it within the change feed's bound (1 s), after
      // which the old entry is unreachable and the question is embedded again — exactly once,
      // whether the ask above already missed or still found the old entry.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, FEED_BOUND_MS - (performance.now() - deleted))));
      await ask(other, a, question);
      expect(other.fence.caches.queryEmbeddings.size).toBe(embeddingsHeld + 1);
    } finally {
      await other.close();
    }
  });
});
