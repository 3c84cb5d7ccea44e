import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { TenantCache, TenantCaches, type SharedCacheBackend } from "../../../src/cache/tenant-caches.js";
import { issueTenantContext, type TenantContext } from "../../../src/core/tenant-context.js";

const ctxFor = (tenantId: string, cacheSecret: string | undefined = `secret-of-${tenantId}`): TenantContext =>
  issueTenantContext({ tenantId, keyId: tenantId, project: "p", environment: "prod", scopes: ["owner"], requestId: "r", cacheSecret });
const A = ctxFor("11111111-1111-4111-8111-111111111111");
const B = ctxFor("22222222-2222-4222-8222-222222222222");

describe("tenant-keyed caches (I5)", () => {
  it("puts the tenant id first in every key, so equal inputs of two tenants never share an entry", async () => {
    const parts = { model: "m", dataVersion: 3, input: "what is the refund policy?" };
    expect(TenantCache.keyFor(A, parts)?.startsWith(`${A.tenantId}|`)).toBe(true);
    expect(TenantCache.keyFor(A, parts)).not.toBe(TenantCache.keyFor(B, parts));

    const cache = new TenantCache<{ v: string }>("t", 100);
    await cache.set(A, parts, { v: "A's answer" });
    expect(await cache.get(A, parts)).toEqual({ v: "A's answer" });
    expect(await cache.get(B, parts)).toBeUndefined();
  });

  it("separates entries by model and by data version", async () => {
    const cache = new TenantCache<{ v: number }>("t", 100);
    await cache.set(A, { model: "m1", dataVersion: 1, input: "q" }, { v: 1 });
    expect(await cache.get(A, { model: "m2", dataVersion: 1, input: "q" })).toBeUndefined();
    expect(await cache.get(A, { model: "m1", dataVersion: 2, input: "q" })).toBeUndefined();
  });

  it("keeps no raw input in its keys", () => {
    const key = TenantCache.keyFor(A, { model: "m", input: "secret question text" });
    expect(key).not.toContain("secret");
  });

  it("hashes inputs with the tenant's secret, so a key cannot be recomputed from a guessed question", () => {
    const input = "what is the refund policy?";
    const key = TenantCache.keyFor(A, { model: "m", input })!;
    const digest = key.slice(key.indexOf("|") + 1);
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    expect(digest).not.toBe(createHash("sha256").update(input).digest("hex"));
    // The same tenant with another secret (rotated by a document delete) gets another key.
    expect(TenantCache.keyFor(ctxFor(A.tenantId, "rotated"), { model: "m", input })).not.toBe(key);
  });

  it("makes every entry of the tenant unreachable when its secret rotates, in every cache", async () => {
    const caches = new TenantCaches(100);
    await caches.answers.set(A, { model: "m", dataVersion: 1, input: "q" }, { body: 1 });
    await caches.queryEmbeddings.set(A, { model: "m", input: "q" }, { vector: [1] });
    const rotated = ctxFor(A.tenantId, "after-delete");
    expect(await caches.answers.get(rotated, { model: "m", dataVersion: 1, input: "q" })).toBeUndefined();
    expect(await caches.queryEmbeddings.get(rotated, { model: "m", input: "q" })).toBeUndefined();
  });

  it("caches nothing for a context issued without a cache secret (fail-closed)", async () => {
    const noSecret = issueTenantContext({ tenantId: A.tenantId, keyId: "k", project: "p", environment: "prod", scopes: ["owner"], requestId: "r" });
    const cache = new TenantCache<{ v: number }>("t", 100);
    await cache.set(noSecret, { model: "m", input: "q" }, { v: 1 });
    expect(cache.size).toBe(0);
    expect(await cache.get(noSecret, { model: "m", input: "q" })).toBeUndefined();
  });

  it("writes shared entries in the tenant's group and purges that group only", async () => {
    const stored = new Map<string, { value: string; group: string }>();
    const shared: SharedCacheBackend = {
      get: async (key) => stored.get(key)?.value ?? null,
      set: async (key, value, _ttl, group) => void stored.set(key, { value, group }),
      deleteGroup: async (group) => {
        const keys = [...stored].filter(([, e]) => e.group === group).map(([k]) => k);
        for (const key of keys) stored.delete(key);
        return keys.length;
      },
    };
    const caches = new TenantCaches(100, shared);
    await caches.answers.set(A, { model: "m", input: "q" }, { body: 1 });
    await caches.answers.set(B, { model: "m", input: "q" }, { body: 2 });
    for (const [key, entry] of stored) expect(key.startsWith(entry.group)).toBe(true);
    await caches.purgeTenant(A.tenantId);
    expect([...stored.values()].map((e) => e.group)).toEqual([TenantCache.sharedPrefix(B.tenantId)]);
  });

  it("refuses a forged context", () => {
    const forged = { tenantId: A.tenantId } as unknown as TenantContext;
    expect(() => TenantCache.keyFor(forged, { model: "m", input: "q" })).toThrow();
  });

  it("purges one tenant from every cache and leaves the others", async () => {
    const caches = new TenantCaches(100);
    await caches.answers.set(A, { model: "m", input: "q" }, { body: 1 });
    await caches.queryEmbeddings.set(A, { model: "m", input: "q" }, { vector: [1] });
    await caches.answers.set(B, { model: "m", input: "q" }, { body: 2 });
    await caches.purgeTenant(A.tenantId);
    expect(await caches.answers.get(A, { model: "m", input: "q" })).toBeUndefined();
    expect(await caches.queryEmbeddings.get(A, { model: "m", input: "q" })).toBeUndefined();
    expect(await caches.answers.get(B, { model: "m", input: "q" })).toEqual({ body: 2 });
  });
});
