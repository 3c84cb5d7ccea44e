import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/platform/config.js";
import { queryRows } from "../../../src/db/database.js";
import { countTenantRows, expectError } from "../../support/api-contract.js";
import { ADMIN_KEY, backends, TestFence } from "../../support/harness.js";
import type { AdminAuditEventListJson, IssuedKeyJson, TenantJson, TenantListJson } from "../../support/api-types.js";

/** Every admin route, with a body that would be valid, so only authentication can refuse it. */
const ADMIN_ROUTES: { method: string; path: string; json?: unknown }[] = [
  { method: "GET", path: "/v1/admin/tenants" },
  { method: "POST", path: "/v1/admin/tenants", json: { name: "intruder" } },
  { method: "DELETE", path: "/v1/admin/tenants/00000000-0000-4000-8000-000000000001" },
  { method: "POST", path: "/v1/admin/tenants/00000000-0000-4000-8000-000000000001/suspend" },
  { method: "POST", path: "/v1/admin/tenants/00000000-0000-4000-8000-000000000001/resume" },
  { method: "POST", path: "/v1/admin/tenants/00000000-0000-4000-8000-000000000001/keys", json: { name: "k" } },
  { method: "DELETE", path: "/v1/admin/tenants/00000000-0000-4000-8000-000000000001/keys/00000000-0000-4000-8000-000000000002" },
];

describe("admin key configuration", () => {
  it("treats an empty or blank FENCE_ADMIN_KEY as unset", () => {
    expect(loadConfig({ FENCE_ADMIN_KEY: "" }).adminKey).toBeUndefined();
    expect(loadConfig({ FENCE_ADMIN_KEY: "   " }).adminKey).toBeUndefined();
    expect(loadConfig({}).adminKey).toBeUndefined();
    expect(() => loadConfig({ FENCE_ADMIN_KEY: "short" })).toThrow(/at least 16/);
  });
});

describe.each(backends)("admin API on $name", (backend) => {
  let fence: TestFence;

  beforeAll(async () => {
    fence = await TestFence.start(backend);
  });
  afterAll(() => fence?.close());

  it("refuses every admin route without the admin key, with one 401 body for every reason", async () => {
    const tenant = await fence.createTenant();
    const credentials: (string | undefined)[] = [undefined, "", "wrong-admin-key-0123456789", `${ADMIN_KEY}x`, ADMIN_KEY.slice(0, -1), tenant.key];
    const messages = new Set<string>();
    for (const route of ADMIN_ROUTES) {
      for (const key of credentials) {
        const res = await fence.request(route.method, route.path, { key, json: route.json });
        const body = await expectError(res, 401, "unauthorized");
        messages.add(body.error.message);
      }
      // A non-Bearer scheme carrying the right secret is still refused.
      const basic = await fence.request(route.method, route.path, { json: route.json, headers: { authorization: `Basic ${ADMIN_KEY}` } });
      messages.add((await expectError(basic, 401, "unauthorized")).error.message);
    }
    expect(messages.size).toBe(1);
  });

  it("refuses the admin key on tenant routes", async () => {
    await expectError(await fence.request("GET", "/v1/documents", { key: ADMIN_KEY }), 401, "unauthorized");
    await expectError(await fence.request("POST", "/v1/search", { key: ADMIN_KEY, json: { query: "x" } }), 401, "unauthorized");
  });

  it("creates and lists tenants; listing never exposes key material", async () => {
    const res = await fence.admin("POST", "/tenants", { name: "  Globex  ", plan: "enterprise" });
    expect(res.status).toBe(201);
    const created = (await res.json()) as TenantJson;
    expect(Object.keys(created).sort()).toEqual(["created_at", "id", "name", "plan", "suspended_at"]);
    expect(created).toMatchObject({ name: "Globex", plan: "enterprise", suspended_at: null });
    const defaulted = (await (await fence.admin("POST", "/tenants", { name: "Initech" })).json()) as TenantJson;
    expect(defaulted.plan).toBe("free");

    const keyRes = await fence.admin("POST", `/tenants/${created.id}/keys`, { name: "ci" });
    const issued = (await keyRes.json()) as IssuedKeyJson;

    const list = await fence.admin("GET", "/tenants");
    expect(list.status).toBe(200);
    const listText = await list.text();
    const { tenants } = JSON.parse(listText) as TenantListJson;
    expect(tenants).toContainEqual(created);
    expect(tenants).toContainEqual(defaulted);
    for (const t of tenants) expect(Object.keys(t).sort()).toEqual(["created_at", "id", "name", "plan", "suspended_at"]);
    expect(listText).not.toContain(issued.key);
    expect(listText).not.toMatch(/fence_(prod|test|sandbox)_/);
    expect(listText).not.toMatch(/key_hash|"key"/);
  });

  it("shows an issued key once and stores only its hash", async () => {
    const tenant = await fence.createTenant();
    const res = await fence.admin("POST", `/tenants/${tenant.id}/keys`, { name: "deploy", project: "web", environment: "sandbox" });
    expect(res.status).toBe(201);
    const issued = (await res.json()) as IssuedKeyJson;
    expect(Object.keys(issued).sort()).toEqual([
      "created_at", "created_by_key_id", "description", "environment", "expires_at", "id", "key", "last_used_at", "name", "prefix",
      "prior_secret_expires_at", "project", "requests_per_minute", "revoked_at", "scopes", "spend_per_month_micros", "tokens_per_month",
    ]);
    // Unscoped and without expiry, a key is what every key was before scopes: owner, forever.
    expect(issued).toMatchObject({ name: "deploy", project: "web", environment: "sandbox", scopes: ["owner"], expires_at: null, description: null, created_by_key_id: null, revoked_at: null });
    // No limits of its own, never used yet.
    expect(issued).toMatchObject({ requests_per_minute: null, tokens_per_month: null, spend_per_month_micros: null, last_used_at: null });
    expect(issued.key).toMatch(/^fence_sandbox_[0-9A-Za-z]{40}$/);
    expect(issued.key.startsWith(issued.prefix)).toBe(true);
    expect(issued.prefix.length).toBeLessThan(issued.key.length - 30);

    const [stored] = await fence.fence.db.asOwner((tx) =>
      queryRows<{ key_hash: string; prefix: string }>(tx, sql`select key_hash, prefix from api_keys where id = ${issued.id}::uuid`),
    );
    expect(stored!.key_hash).not.toBe(issued.key);
    expect(stored!.key_hash).not.toContain(issued.key.slice(-40));
    expect(stored!.key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(stored!.prefix).toBe(issued.prefix);

    // The key works, and no admin route ever returns it again.
    expect((await fence.request("GET", "/v1/documents", { key: issued.key })).status).toBe(200);
    expect(await (await fence.admin("GET", "/tenants")).text()).not.toContain(issued.key);
  });

  it("revokes a key so that the very next request with it is 401; a second revoke is 404", async () => {
    const tenant = await fence.createTenant();
    const other = await fence.admin("POST", `/tenants/${tenant.id}/keys`, { name: "second" });
    const otherKey = ((await other.json()) as IssuedKeyJson).key;
    expect((await fence.request("GET", "/v1/documents", { key: tenant.key })).status).toBe(200);

    const revoke = await fence.admin("DELETE", `/tenants/${tenant.id}/keys/${tenant.keyId}`);
    expect(revoke.status).toBe(204);
    await expectError(await fence.request("GET", "/v1/documents", { key: tenant.key }), 401, "unauthorized");
    // The tenant's other key is untouched.
    expect((await fence.request("GET", "/v1/documents", { key: otherKey })).status).toBe(200);

    await expectError(await fence.admin("DELETE", `/tenants/${tenant.id}/keys/${tenant.keyId}`), 404, "not_found");
    // A key id under the wrong tenant is not found either.
    const stranger = await fence.createTenant();
    await expectError(await fence.admin("DELETE", `/tenants/${tenant.id}/keys/${stranger.keyId}`), 404, "not_found");
    expect((await fence.request("GET", "/v1/documents", { key: stranger.key })).status).toBe(200);
  });

  it("deletes a tenant with every row it owns; its key stops working; a second delete is 404", async () => {
    const tenant = await fence.createTenant();
    const bystander = await fence.createTenant();
    await fence.upload(tenant, { text: "# One\n\nFirst section.\n\n# Two\n\nSecond section." });
    await fence.upload(tenant, { text: "Another document." });
    await fence.upload(bystander, { text: "The bystander keeps this." });
    expect(await countTenantRows(fence, tenant.id)).toEqual({ documents: 2, chunks: 3, apiKeys: 1 });
    const bystanderBefore = await countTenantRows(fence, bystander.id);

    const del = await fence.admin("DELETE", `/tenants/${tenant.id}`);
    expect(del.status).toBe(204);
    await expectError(await fence.request("GET", "/v1/documents", { key: tenant.key }), 401, "unauthorized");
    expect(await countTenantRows(fence, tenant.id)).toEqual({ documents: 0, chunks: 0, apiKeys: 0 });
    expect(await countTenantRows(fence, bystander.id)).toEqual(bystanderBefore);
    const { tenants } = (await (await fence.admin("GET", "/tenants")).json()) as TenantListJson;
    expect(tenants.map((t) => t.id)).not.toContain(tenant.id);

    await expectError(await fence.admin("DELETE", `/tenants/${tenant.id}`), 404, "not_found");
    await expectError(await fence.admin("POST", `/tenants/${tenant.id}/keys`, { name: "late" }), 404, "not_found");
  });

  it.each(["not-a-uuid", "123", "00000000-0000-4000-8000-00000000000g", "%27%20OR%201%3D1--", "%E2%98%83"])(
    "answers 404 (never 500) for the malformed tenant id %s",
    async (badId) => {
      await expectError(await fence.admin("DELETE", `/tenants/${badId}`), 404, "not_found");
      await expectError(await fence.admin("POST", `/tenants/${badId}/keys`, { name: "k" }), 404, "not_found");
      await expectError(await fence.admin("DELETE", `/tenants/${badId}/keys/${badId}`), 404, "not_found");
      await expectError(await fence.admin("POST", `/tenants/${badId}/suspend`), 404, "not_found");
      await expectError(await fence.admin("POST", `/tenants/${badId}/resume`), 404, "not_found");
    },
  );

  it("suspends a tenant: its keys answer 403 tenant_suspended on the next request, other tenants go on, and resuming restores them", async () => {
    const tenant = await fence.createTenant();
    const bystander = await fence.createTenant();
    await fence.upload(tenant, { text: "Kept while the tenant is suspended." });
    expect((await fence.request("GET", "/v1/documents", { key: tenant.key })).status).toBe(200);

    const res = await fence.admin("POST", `/tenants/${tenant.id}/suspend`);
    expect(res.status).toBe(200);
    const suspended = (await res.json()) as TenantJson;
    expect(suspended).toMatchObject({ id: tenant.id, name: tenant.name, suspended_at: expect.any(String) });
    expect(Date.parse(suspended.suspended_at!)).toBeGreaterThan(Date.parse(suspended.created_at));

    for (const [method, path, json] of [
      ["GET", "/v1/documents", undefined],
      ["POST", "/v1/search", { query: "kept" }],
      ["POST", "/v1/documents", { text: "Not while suspended." }],
      ["GET", "/v1/limits", undefined],
    ] as const) {
      const body = await expectError(await fence.request(method, path, { key: tenant.key, json }), 403, "tenant_suspended");
      expect(body.error.message).toBe("This tenant is suspended by the platform operator; its keys authenticate nothing until it is resumed.");
    }
    expect((await fence.request("GET", "/v1/documents", { key: bystander.key })).status).toBe(200);
    const { tenants } = (await (await fence.admin("GET", "/tenants")).json()) as TenantListJson;
    expect(tenants.find((t) => t.id === tenant.id)).toEqual(suspended);
    expect(tenants.find((t) => t.id === bystander.id)?.suspended_at).toBeNull();

    const resumed = await fence.admin("POST", `/tenants/${tenant.id}/resume`);
    expect(resumed.status).toBe(200);
    expect(await resumed.json()).toEqual({ ...suspended, suspended_at: null });
    const list = await fence.request("GET", "/v1/documents", { key: tenant.key });
    expect(list.status).toBe(200);
    // Its data stayed as it was.
    expect(((await list.json()) as { documents: unknown[] }).documents).toHaveLength(1);
  });

  it("suspends and resumes idempotently: a repeat keeps the first suspended_at and records no second event", async () => {
    const tenant = await fence.createTenant();
    const first = (await (await fence.admin("POST", `/tenants/${tenant.id}/suspend`)).json()) as TenantJson;
    const again = await fence.admin("POST", `/tenants/${tenant.id}/suspend`);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(first);
    expect((await fence.admin("POST", `/tenants/${tenant.id}/resume`)).status).toBe(200);
    const resumedAgain = await fence.admin("POST", `/tenants/${tenant.id}/resume`);
    expect(resumedAgain.status).toBe(200);
    expect(((await resumedAgain.json()) as TenantJson).suspended_at).toBeNull();

    const trail = (await (await fence.admin("GET", `/audit?tenant_id=${tenant.id}`)).json()) as AdminAuditEventListJson;
    const changes = trail.events.filter((e) => e.action.startsWith("tenant.")).map((e) => ({ action: e.action, actor: e.actor, target: e.target_id, before: e.before?.suspended_at, after: e.after?.suspended_at }));
    expect(changes).toEqual([
      { action: "tenant.resumed", actor: "admin", target: tenant.id, before: first.suspended_at, after: null },
      { action: "tenant.suspended", actor: "admin", target: tenant.id, before: null, after: first.suspended_at },
      { action: "tenant.created", actor: "admin", target: tenant.id, before: undefined, after: null },
    ]);
  });

  it("answers 404 for suspending or resuming a tenant that does not exist, or no longer does", async () => {
    const gone = await fence.createTenant();
    expect((await fence.admin("DELETE", `/tenants/${gone.id}`)).status).toBe(204);
    for (const id of [gone.id, "00000000-0000-4000-8000-00000000dead"]) {
      await expectError(await fence.admin("POST", `/tenants/${id}/suspend`), 404, "not_found");
      await expectError(await fence.admin("POST", `/tenants/${id}/resume`), 404, "not_found");
    }
  });

  it.each([
    ["an unknown environment", { name: "k", environment: "staging" }],
    ["a numeric environment", { name: "k", environment: 1 }],
    ["a missing name", { environment: "prod" }],
    ["an empty name", { name: "  " }],
    ["an empty project", { name: "k", project: "" }],
    ["a NUL byte in the project", { name: "k", project: "p\u0000" }],
  ])("refuses to issue a key with %s (400) and stores none", async (_label, body) => {
    const tenant = await fence.createTenant();
    await expectError(await fence.admin("POST", `/tenants/${tenant.id}/keys`, body), 400, "validation_error");
    expect((await countTenantRows(fence, tenant.id)).apiKeys).toBe(1);
  });

  it.each([
    ["a missing name", {}],
    ["a numeric name", { name: 42 }],
    ["an over-long name", { name: "n".repeat(201) }],
    ["an empty plan", { name: "ok", plan: "" }],
    ["a NUL byte in the name", { name: "a\u0000b" }],
  ])("refuses to create a tenant with %s (400)", async (_label, body) => {
    await expectError(await fence.admin("POST", "/tenants", body), 400, "validation_error");
  });
});

describe.each(backends)("admin API with FENCE_ADMIN_KEY unset on $name", (backend) => {
  let fence: TestFence;

  beforeAll(async () => {
    fence = await TestFence.start(backend, { env: { FENCE_ADMIN_KEY: "" } });
  });
  afterAll(() => fence?.close());

  it("refuses every admin route, whatever is presented", async () => {
    expect(fence.config.adminKey).toBeUndefined();
    for (const route of ADMIN_ROUTES) {
      for (const key of [undefined, "", ADMIN_KEY, "undefined", "null"]) {
        await expectError(await fence.request(route.method, route.path, { key, json: route.json }), 401, "unauthorized");
      }
    }
  });
});
