import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiKeys, auditEvents } from "../../../src/db/schema.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import type { AdminAuditEventListJson, ApiKeyJson, AuditEventListJson, ErrorBody, ErrorBodyWith, IssuedKeyJson } from "../../support/api-types.js";

/**
 * Issue 18, the owner's self-service: an `owner` key makes, lists, revokes and rotates its
 * tenant's keys (never another tenant's), a key never holds more than the key that made it,
 * revoking a key revokes what it made, and every change lands in the audit trail without a secret.
 */
describe.each(backends)("self-service keys on $name", (backend) => {
  let fence: TestFence;
  let a: TestTenant;
  let b: TestTenant;

  beforeAll(async () => {
    fence = await TestFence.start(backend, { env: { FENCE_JOB_WORKERS: "0" } });
    a = await fence.createTenant("self-service-a", "enterprise");
    b = await fence.createTenant("self-service-b", "enterprise");
  });
  afterAll(async () => {
    await fence?.close();
  });

  async function make(ownerKey: string, body: Record<string, unknown>): Promise<IssuedKeyJson> {
    const res = await fence.request("POST", "/v1/keys", { key: ownerKey, json: { name: "made", ...body } });
    expect(res.status, await res.clone().text()).toBe(201);
    return (await res.json()) as IssuedKeyJson;
  }
  const works = async (key: string) => (await fence.request("GET", "/v1/limits", { key })).status;
  const errorOf = async (res: Response) => ((await res.json()) as ErrorBody).error;
  async function listKeys(key: string, includeRevoked = false): Promise<ApiKeyJson[]> {
    const res = await fence.request("GET", `/v1/keys${includeRevoked ? "?include_revoked=true" : ""}`, { key });
    expect(res.status).toBe(200);
    return ((await res.json()) as { keys: ApiKeyJson[] }).keys;
  }
  async function auditOf(key: string, query = ""): Promise<AuditEventListJson["events"]> {
    const res = await fence.request("GET", `/v1/audit${query}`, { key });
    expect(res.status).toBe(200);
    return ((await res.json()) as AuditEventListJson).events;
  }
  async function storedKeys(tenantId: string): Promise<number> {
    const rows = await fence.fence.db.asPlatformAdmin("test: count keys", (tx) => tx.select({ id: apiKeys.id }).from(apiKeys).where(eq(apiKeys.tenantId, tenantId)));
    return rows.length;
  }

  it("makes a key that works, lists the tenant's keys without secrets, and records who made it", async () => {
    const made = await make(a.key, { name: "web", scopes: ["query"], description: "front end" });
    expect(made).toMatchObject({ name: "web", scopes: ["query"], description: "front end", created_by_key_id: a.keyId, revoked_at: null });
    expect(await works(made.key)).toBe(403); // /v1/limits needs `read`: the key is real, and scoped
    expect((await fence.request("POST", "/v1/search", { key: made.key, json: { query: "anything" } })).status).toBe(200);

    const listed = await listKeys(a.key);
    expect(listed.map((k) => k.id)).toEqual(expect.arrayContaining([a.keyId, made.id]));
    const text = JSON.stringify(listed);
    expect(text).not.toContain(made.key);
    expect(text).not.toMatch(/key_hash|"key"/);
    // Only A's keys.
    expect(listed.map((k) => k.id)).not.toContain(b.keyId);
  });

  it("never lets a key hold more than its maker: later expiry and higher limits refused, the rest inherited", async () => {
    const expiry = new Date(Date.now() + 3_600_000).toISOString();
    const bounded = await make(a.key, { name: "bounded-owner", expires_at: expiry, requests_per_minute: 100 });
    const before = await storedKeys(a.id);
    for (const body of [
      { expires_at: new Date(Date.now() + 7_200_000).toISOString() },
      { requests_per_minute: 101 },
    ]) {
      const res = await fence.request("POST", "/v1/keys", { key: bounded.key, json: { name: "greedy", ...body } });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await errorOf(res)).code).toBe("validation_error");
    }
    expect(await storedKeys(a.id)).toBe(before);
    const child = await make(bounded.key, { name: "child", scopes: ["read"] });
    expect(child.expires_at).toBe(new Date(expiry).toISOString());
    expect(child.requests_per_minute).toBe(100);
    expect(child.created_by_key_id).toBe(bounded.id);
  });

  it("refuses keys without `owner` on every key and audit route with 403, and stores nothing", async () => {
    const before = await storedKeys(a.id);
    for (const scope of ["query", "ingest", "read"]) {
      const scoped = await make(a.key, { name: `only-${scope}`, scopes: [scope] });
      for (const [method, path, json] of [
        ["POST", "/v1/keys", { name: "escalated", scopes: ["owner"] }],
        ["GET", "/v1/keys", undefined],
        ["DELETE", `/v1/keys/${a.keyId}`, undefined],
        ["POST", `/v1/keys/${a.keyId}/rotate`, {}],
        ["GET", "/v1/audit", undefined],
      ] as const) {
        const res = await fence.request(method, path, { key: scoped.key, ...(json ? { json } : {}) });
        expect(res.status, `${scope} ${method} ${path}`).toBe(403);
        expect(((await res.json()) as ErrorBodyWith<{ required_scope: string }>).error.details).toEqual({ required_scope: "owner" });
      }
    }
    expect(await works(a.key)).toBe(200); // A's owner key was neither revoked nor rotated
    expect(await storedKeys(a.id)).toBe(before + 3);
  });

  it("revokes a key and, transitively, every key it made; an admin revocation does the same", async () => {
    const second = await make(a.key, { name: "second owner" });
    const third = await make(second.key, { name: "third, made by second" });
    const fourth = await make(third.key, { name: "fourth, made by third", scopes: ["read"] });
    const unrelated = await make(a.key, { name: "unrelated", scopes: ["read"] });
    expect(await works(third.key)).toBe(200);

    expect((await fence.request("DELETE", `/v1/keys/${second.id}`, { key: a.key })).status).toBe(204);
    for (const key of [second.key, third.key, fourth.key]) expect(await works(key)).toBe(401);
    expect(await works(unrelated.key)).toBe(200);
    const revoked = (await listKeys(a.key, true)).filter((k) => [second.id, third.id, fourth.id].includes(k.id));
    expect(revoked.every((k) => k.revoked_at !== null)).toBe(true);
    const events = await auditOf(a.key);
    expect(events.filter((e) => e.action === "key.revoked" && e.target_id === second.id)).toHaveLength(1);
    expect(events.filter((e) => e.action === "key.revoked_with_its_creator").map((e) => e.target_id).sort()).toEqual(expect.arrayContaining([third.id, fourth.id].sort()));
    // Again: nothing left to revoke.
    expect((await fence.request("DELETE", `/v1/keys/${second.id}`, { key: a.key })).status).toBe(404);

    // The platform admin revoking a key also revokes what it made.
    const fifth = await make(a.key, { name: "fifth owner" });
    const sixth = await make(fifth.key, { name: "sixth", scopes: ["read"] });
    expect((await fence.admin("DELETE", `/tenants/${a.id}/keys/${fifth.id}`)).status).toBe(204);
    expect(await works(sixth.key)).toBe(401);
  });

  it("rotates a key: the new secret works, the old one through its grace period only, and the key keeps its id", async () => {
    const key = await make(a.key, { name: "rotating", scopes: ["read"] });
    const rotated = await fence.request("POST", `/v1/keys/${key.id}/rotate`, { key: a.key, json: { grace_seconds: 2 } });
    expect(rotated.status).toBe(200);
    const fresh = (await rotated.json()) as IssuedKeyJson;
    expect(fresh.id).toBe(key.id);
    expect(fresh.key).not.toBe(key.key);
    expect(fresh.prior_secret_expires_at).not.toBeNull();
    expect(await works(fresh.key)).toBe(200);
    expect(await works(key.key)).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 2_300));
    const late = await fence.request("GET", "/v1/limits", { key: key.key });
    expect(late.status).toBe(401);
    expect((await errorOf(late)).message).toBe("The API key was rotated and its grace period has ended.");
    expect(await works(fresh.key)).toBe(200);

    // Rotating again ends the earlier secret's grace at once, and grace 0 ends the replaced one too.
    const again = (await (await fence.request("POST", `/v1/keys/${key.id}/rotate`, { key: a.key, json: { grace_seconds: 0 } })).json()) as IssuedKeyJson;
    expect(await works(again.key)).toBe(200);
    expect(await works(fresh.key)).toBe(401);
    // No body: the default grace period.
    const third = await fence.request("POST", `/v1/keys/${key.id}/rotate`, { key: a.key });
    expect(third.status).toBe(200);
    expect(await works(again.key)).toBe(200);

    const events = (await auditOf(a.key, "?action=key.rotated")).filter((e) => e.target_id === key.id);
    expect(events).toHaveLength(3);
    expect(events.every((e) => e.actor === "key" && e.actor_key_id === a.keyId)).toBe(true);
  });

  it("refuses a grace period over 24 h with 400, and rotating a revoked key with 404", async () => {
    const key = await make(a.key, { name: "grace", scopes: ["read"] });
    const long = await fence.request("POST", `/v1/keys/${key.id}/rotate`, { key: a.key, json: { grace_seconds: 86_401 } });
    expect(long.status).toBe(400);
    expect(await works(key.key)).toBe(200);
    expect((await fence.request("DELETE", `/v1/keys/${key.id}`, { key: a.key })).status).toBe(204);
    expect((await fence.request("POST", `/v1/keys/${key.id}/rotate`, { key: a.key, json: {} })).status).toBe(404);
  });

  it("answers A's owner acting on B's keys exactly as for keys that do not exist, and changes nothing of B", async () => {
    const bKey = await make(b.key, { name: "b's reader", scopes: ["read"] });
    const missing = crypto.randomUUID();
    for (const [method, suffix] of [["DELETE", ""], ["POST", "/rotate"]] as const) {
      const onB = await fence.request(method, `/v1/keys/${bKey.id}${suffix}`, { key: a.key, ...(method === "POST" ? { json: {} } : {}) });
      const onNothing = await fence.request(method, `/v1/keys/${missing}${suffix}`, { key: a.key, ...(method === "POST" ? { json: {} } : {}) });
      expect(onB.status).toBe(404);
      expect(onNothing.status).toBe(404);
      expect((await errorOf(onB)).message).toBe((await errorOf(onNothing)).message);
    }
    expect(await works(bKey.key)).toBe(200);
    expect(await works(b.key)).toBe(200);
    const auditOfA = JSON.stringify(await auditOf(a.key));
    expect(auditOfA).not.toContain(bKey.id);
    expect(auditOfA).not.toContain(b.keyId);
    const auditOfB = await auditOf(b.key);
    expect(auditOfB.some((e) => e.target_id === bKey.id && e.action === "key.created")).toBe(true);
    expect(auditOfB.every((e) => e.action !== "key.revoked" && e.action !== "key.rotated")).toBe(true);
  });

  it("keeps secrets out of the trail, pages it, and keeps a purged tenant's trail for the platform", async () => {
    const c = await fence.createTenant("self-service-c");
    const made = await make(c.key, { name: "secretive" });
    const rotated = (await (await fence.request("POST", `/v1/keys/${made.id}/rotate`, { key: c.key, json: { grace_seconds: 0 } })).json()) as IssuedKeyJson;
    const hashes = await fence.fence.db.asPlatformAdmin("test: hashes", (tx) => tx.select({ hash: apiKeys.keyHash, prior: apiKeys.priorKeyHash }).from(apiKeys).where(eq(apiKeys.tenantId, c.id)));
    const trail = await fence.fence.db.asPlatformAdmin("test: trail", (tx) => tx.select().from(auditEvents).where(eq(auditEvents.tenantId, c.id)));
    const text = JSON.stringify(trail);
    for (const secret of [c.key, made.key, rotated.key, ...hashes.flatMap((h) => [h.hash, h.prior]).filter((h): h is string => !!h)]) {
      expect(text).not.toContain(secret.slice(-20));
    }
    // Pages: one event at a time, newest first, no repeats, each page's cursor the last id.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await fence.request("GET", `/v1/audit?limit=1${cursor ? `&cursor=${cursor}` : ""}`, { key: c.key });
      expect(res.status).toBe(200);
      const page = (await res.json()) as AuditEventListJson;
      seen.push(...page.events.map((e) => e.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toHaveLength(trail.length);
    expect(new Set(seen).size).toBe(seen.length);
    // Another tenant's event id as a cursor answers like a made-up one.
    const [eventOfA] = await auditOf(a.key, "?limit=1");
    expect((await fence.request("GET", `/v1/audit?cursor=${eventOfA!.id}`, { key: c.key })).status).toBe(400);

    expect((await fence.admin("DELETE", `/tenants/${c.id}`)).status).toBe(204);
    const res = await fence.admin("GET", `/audit?tenant_id=${c.id}&limit=100`);
    expect(res.status).toBe(200);
    const platform = ((await res.json()) as AdminAuditEventListJson).events;
    expect(platform.map((e) => e.action)).toEqual(["tenant.purged", "key.rotated", "key.created", "key.created", "tenant.created"]);
    expect(platform.every((e) => e.tenant_id === c.id)).toBe(true);
    expect(platform.find((e) => e.action === "key.created" && e.actor === "admin")?.target_id).toBe(c.keyId);
  });
});
