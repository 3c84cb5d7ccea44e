import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiKeys } from "../../../src/db/schema.js";
import { SCOPES, type Scope } from "../../../src/core/scopes.js";
import { SCOPE_EXTENSION } from "../../../src/http/route-scopes.js";
import { ADMIN_KEY, backends, TestFence, type TestTenant } from "../../support/harness.js";
import type { ErrorBody, ErrorBodyWith, IssuedKeyJson } from "../../support/api-types.js";

/**
 * Issue 18, scoped keys: the scope matrix, generated from the OpenAPI document. Every tenant
 * operation declares the scope it needs (`x-fence-scope`); for each, every kind of key is tried:
 * a key with exactly one scope (each of the four), no key, a revoked key, an expired key and the
 * admin key. A key without the scope gets 403 `insufficient_scope` naming the scope needed, before
 * the body is even validated; a key with it gets past the check (whatever the empty request then
 * earns: 400, 404, 200 — never 401 or 403); the others get 401. A route added without a declaration
 * never gets this far: the app refuses to build (test/unit/http/route-scopes.test.ts).
 */
type Operation = { method: string; path: string; operationId: string; scope: Scope };

const FAKE_ID = "00000000-0000-4000-8000-000000000000";

describe.each(backends)("key scopes on $name", (backend) => {
  let fence: TestFence;
  let tenant: TestTenant;
  const keys = new Map<string, string>();
  let operations: Operation[] = [];

  async function issue(tenantId: string, body: Record<string, unknown>): Promise<IssuedKeyJson> {
    const res = await fence.admin("POST", `/tenants/${tenantId}/keys`, { name: "scoped", ...body });
    expect(res.status, await res.clone().text()).toBe(201);
    return (await res.json()) as IssuedKeyJson;
  }

  beforeAll(async () => {
    fence = await TestFence.start(backend, { env: { FENCE_JOB_WORKERS: "0" } });
    tenant = await fence.createTenant("scopes", "enterprise");
    for (const scope of SCOPES) keys.set(scope, (await issue(tenant.id, { scopes: [scope] })).key);
    const revoked = await issue(tenant.id, { scopes: ["owner"] });
    expect((await fence.admin("DELETE", `/tenants/${tenant.id}/keys/${revoked.id}`)).status).toBe(204);
    keys.set("revoked", revoked.key);
    // Valid for a moment: used once while valid (so it is verified and held in memory), then expired.
    const expiresAt = Date.now() + 1_500;
    const expiring = await issue(tenant.id, { scopes: ["owner"], expires_at: new Date(expiresAt).toISOString() });
    expect((await fence.request("GET", "/v1/limits", { key: expiring.key })).status).toBe(200);
    keys.set("expired", expiring.key);

    const doc = (await (await fence.request("GET", "/openapi.json")).json()) as {
      paths: Record<string, Record<string, { operationId: string; security?: Record<string, unknown>[]; [SCOPE_EXTENSION]?: Scope }>>;
    };
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        if (!op.security?.some((s) => "tenantKey" in s)) continue;
        expect(op[SCOPE_EXTENSION], `${method} ${path} declares its scope in the document`).toBeDefined();
        operations.push({ method: method.toUpperCase(), path: path.replace(/\{[^}]+\}/g, FAKE_ID), operationId: op.operationId, scope: op[SCOPE_EXTENSION]! });
      }
    }
    operations = operations.sort((a, b) => a.operationId.localeCompare(b.operationId));
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt + 100 - Date.now())));
  });
  afterAll(async () => {
    await fence?.close();
  });

  const call = (op: Operation, key: string | undefined) =>
    fence.request(op.method, op.path, { ...(key === undefined ? {} : { key }), ...(op.method === "GET" || op.method === "DELETE" ? {} : { json: {} }) });

  it("finds every tenant route in the document, each with a scope", () => {
    // The routes of today's API; a new one joins the matrix by itself.
    expect(operations.length).toBeGreaterThanOrEqual(16);
    expect(new Set(operations.map((o) => o.scope))).toEqual(new Set(SCOPES));
  });

  it("answers each scoped key by its scope: 403 naming the scope it lacks, past the check where it holds it", async () => {
    const matrix: string[] = [];
    for (const op of operations) {
      for (const scope of SCOPES) {
        const res = await call(op, keys.get(scope));
        const body = res.status >= 400 ? ((await res.json()) as ErrorBodyWith<{ required_scope?: string }>) : undefined;
        matrix.push(`${op.operationId} ${scope}: ${res.status}`);
        // The rule, written out here rather than imported, so a broken check cannot agree with itself.
        if (scope === op.scope || scope === "owner") {
          expect([401, 403], `${op.operationId} with a ${scope} key: ${JSON.stringify(body)}`).not.toContain(res.status);
        } else {
          expect(res.status, `${op.operationId} with a ${scope} key`).toBe(403);
          expect(body!.error).toMatchObject({ code: "insufficient_scope", details: { required_scope: op.scope } });
          expect(body!.error.message).toContain(`'${op.scope}'`);
        }
      }
    }
    expect(matrix.length).toBe(operations.length * SCOPES.length);
  });

  it("answers no key, a revoked key, an expired key and the admin key with 401 on every tenant route", async () => {
    for (const op of operations) {
      for (const [label, key] of [["no key", undefined], ["revoked", keys.get("revoked")], ["expired", keys.get("expired")], ["admin", ADMIN_KEY]] as const) {
        const res = await call(op, key);
        expect(res.status, `${op.operationId} with ${label}`).toBe(401);
        const body = (await res.json()) as ErrorBody;
        expect(body.error.code).toBe("unauthorized");
        // Only the holder of a real, expired key learns that it expired.
        expect(body.error.message).toBe(label === "expired" ? "The API key has expired." : "Missing or invalid API key.");
      }
    }
  });

  it("issues owner keys by default, and refuses unknown, repeated or empty scopes and a past expiry with 400, storing nothing", async () => {
    const plain = await issue(tenant.id, {});
    expect(plain).toMatchObject({ scopes: ["owner"], expires_at: null, description: null });
    const described = await issue(tenant.id, { scopes: ["query", "read"], description: "web front end", expires_at: "2999-01-01T00:00:00Z" });
    expect(described).toMatchObject({ scopes: ["query", "read"], description: "web front end", expires_at: "2999-01-01T00:00:00.000Z" });
    const before = await countKeys();
    for (const body of [
      { scopes: ["admin"] },
      { scopes: [] },
      { scopes: ["query", "query"] },
      { scopes: "owner" },
      { expires_at: "2001-01-01T00:00:00Z" },
      { expires_at: "tomorrow" },
    ]) {
      const res = await fence.admin("POST", `/tenants/${tenant.id}/keys`, { name: "bad", ...body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as ErrorBody).error.code).toBe("validation_error");
    }
    expect(await countKeys()).toBe(before);
  });

  async function countKeys(): Promise<number> {
    const rows = await fence.fence.db.asPlatformAdmin("test: count keys", (tx) => tx.select({ id: apiKeys.id }).from(apiKeys).where(eq(apiKeys.tenantId, tenant.id)));
    return rows.length;
  }
});
