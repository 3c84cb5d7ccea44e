import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../../src/db/database.js";
import { readQueueDepth } from "../../../src/jobs/queue-depth.js";
import { SESSION_COOKIE } from "../../../src/console/session.js";
import { SCOPE_EXTENSION } from "../../../src/http/route-scopes.js";
import { countTenantRows, expectError } from "../../support/api-contract.js";
import { ConsoleBrowser, csrfOf } from "../../support/console-browser.js";
import { ADMIN_KEY, backends, TestFence, type TestTenant } from "../../support/harness.js";
import { waitForJob, type TenantGet } from "../../support/job-helpers.js";
import { isolatedBackend } from "../../support/scratch-database.js";
import type { ErrorBody, IssuedKeyJson, JobJson, TenantJson } from "../../support/api-types.js";

/**
 * Tenant suspension (TenantAdmin.suspendTenant / resumeTenant, POST /v1/admin/tenants/:id/suspend
 * and /resume): while a tenant is suspended, every tenant route answers its valid keys 403
 * `tenant_suspended` from the next request on (its keys were held verified in memory), its console
 * sessions show why and its sign-ins are refused with the same words, and the job scheduler starts
 * none of its queued jobs; other tenants go on. A revoked, unknown or expired key answers its 401
 * exactly as before, so the 403 tells no one but a key's holder anything. Resuming undoes all of
 * it, and the jobs that waited run. The admin API's own contract (idempotence, audit, 404, 401) is
 * in admin-api.test.ts, which also runs against the Worker; the other instance's view is in
 * key-cache-invalidation.test.ts.
 *
 * On Postgres a database of its own: the queued jobs here must wait for this instance's worker,
 * not be run by another suite's.
 */
const SUSPENDED_MESSAGE = "This tenant is suspended by the platform operator; its keys authenticate nothing until it is resumed.";
const FAKE_ID = "00000000-0000-4000-8000-000000000000";

describe.each(backends.filter((b) => b.name !== "worker"))("tenant suspension on $name", (baseBackend) => {
  let fence: TestFence;
  let drop: () => Promise<void>;

  const list = (key: string) => fence.request("GET", "/v1/documents", { key });
  const suspend = async (tenantId: string) => expect((await fence.admin("POST", `/tenants/${tenantId}/suspend`)).status).toBe(200);
  const resume = async (tenantId: string) => expect((await fence.admin("POST", `/tenants/${tenantId}/resume`)).status).toBe(200);
  const tenantGet = (key: string): TenantGet => async (path) => fence.request("GET", path, { key });
  async function issue(tenantId: string, body: Record<string, unknown>): Promise<IssuedKeyJson> {
    const res = await fence.admin("POST", `/tenants/${tenantId}/keys`, { name: "extra", ...body });
    expect(res.status, await res.clone().text()).toBe(201);
    return (await res.json()) as IssuedKeyJson;
  }
  async function jobRow(id: string): Promise<{ status: string; attempts: number }> {
    const [row] = await fence.fence.db.asPlatformAdmin("test-read-job", (tx) =>
      queryRows<{ status: string; attempts: number }>(tx, sql`SELECT status, attempts FROM jobs WHERE id = ${id}`),
    );
    return row!;
  }
  const signedIn = async (key: string) => {
    const browser = new ConsoleBrowser(fence);
    expect((await browser.signIn(key)).status).toBe(303);
    return browser;
  };

  beforeAll(async () => {
    const isolated = await isolatedBackend(baseBackend, "fence_suspension");
    drop = isolated.drop;
    // No job workers of its own until the job test starts one: queued jobs stay queued until then.
    fence = await TestFence.start(isolated.backend, { env: { FENCE_JOB_WORKERS: "0", FENCE_JOB_POLL_MS: "50" } });
  });
  afterAll(async () => {
    await fence?.close();
    await drop?.();
  });

  it("refuses a suspended tenant's keys on every tenant route with 403 tenant_suspended, from the next request, and nobody else's", async () => {
    const a = await fence.createTenant("suspended-a", "enterprise");
    const b = await fence.createTenant("bystander-b", "enterprise");
    const aReader = await issue(a.id, { scopes: ["read"] });
    // Verified and held in memory before the suspension: the refusal is the cache being dropped.
    for (const key of [a.key, aReader.key, b.key]) expect((await list(key)).status).toBe(200);

    await suspend(a.id);
    const doc = (await (await fence.request("GET", "/openapi.json")).json()) as {
      paths: Record<string, Record<string, { operationId: string; security?: Record<string, unknown>[]; [SCOPE_EXTENSION]?: string }>>;
    };
    let routes = 0;
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        if (!op.security?.some((s) => "tenantKey" in s)) continue;
        routes++;
        const concrete = path.replace(/\{[^}]+\}/g, FAKE_ID);
        const json = method === "get" || method === "delete" ? undefined : {};
        for (const key of [a.key, aReader.key]) {
          const body = await expectError(await fence.request(method.toUpperCase(), concrete, { key, json }), 403, "tenant_suspended");
          expect(body.error.message, `${op.operationId}`).toBe(SUSPENDED_MESSAGE);
        }
      }
    }
    expect(routes).toBeGreaterThanOrEqual(16);

    // The other tenant, and the admin, go on.
    expect((await list(b.key)).status).toBe(200);
    expect((await fence.request("POST", "/v1/search", { key: b.key, json: { query: "anything" } })).status).toBe(200);
    expect((await fence.admin("GET", `/tenants/${a.id}/config`)).status).toBe(200);

    await resume(a.id);
    for (const key of [a.key, aReader.key]) expect((await list(key)).status).toBe(200);
  });

  it("still answers a revoked key of a suspended tenant 401 exactly as an unknown key, and an expired one as expired", async () => {
    const a = await fence.createTenant("suspended-revoked", "enterprise");
    const revoked = await issue(a.id, {});
    const expiresAt = Date.now() + 1_500;
    const expiring = await issue(a.id, { expires_at: new Date(expiresAt).toISOString() });
    expect((await list(revoked.key)).status).toBe(200);
    expect((await list(expiring.key)).status).toBe(200);
    expect((await fence.admin("DELETE", `/tenants/${a.id}/keys/${revoked.id}`)).status).toBe(204);
    await suspend(a.id);
    await sleep(Math.max(0, expiresAt + 100 - Date.now()));

    const reportsBefore = fence.fence.securityEvents.count("revoked_key_used");
    const unknownKey = `${revoked.key.slice(0, -6)}zzzzzz`;
    const bodies: ErrorBody[] = [];
    for (const key of [revoked.key, unknownKey]) bodies.push(await expectError(await list(key), 401, "unauthorized"));
    const [ofRevoked, ofUnknown] = bodies.map((b) => ({ ...b.error, request_id: undefined }));
    expect(ofRevoked).toEqual(ofUnknown);
    expect(ofRevoked!.message).toBe("Missing or invalid API key.");
    // Still reported as a revoked key's use, as for any tenant.
    expect(fence.fence.securityEvents.count("revoked_key_used")).toBe(reportsBefore + 1);
    expect((await expectError(await list(expiring.key), 401, "unauthorized")).error.message).toBe("The API key has expired.");
    // The tenant's valid key is the one that learns of the suspension.
    await expectError(await list(a.key), 403, "tenant_suspended");
    await resume(a.id);
    expect((await list(a.key)).status).toBe(200);
    await expectError(await list(revoked.key), 401, "unauthorized");
  });

  it("starts none of a suspended tenant's queued jobs — they wait, counted in the queue — and runs them once it is resumed", async () => {
    const a = await fence.createTenant("suspended-jobs", "enterprise");
    const b = await fence.createTenant("running-jobs", "enterprise");
    const queue = async (tenant: TestTenant, text: string) => {
      const res = await fence.request("POST", "/v1/documents", { key: tenant.key, json: { title: "Queued", text }, headers: { prefer: "respond-async" } });
      expect(res.status, await res.clone().text()).toBe(202);
      return (await res.json()) as JobJson;
    };
    const waiting = await queue(a, "Queued before the tenant was suspended: the barn doors close at dusk.");
    await suspend(a.id);
    const control = await queue(b, "Queued by a tenant that is not suspended: the mill wheel turns at dawn.");

    fence.fence.jobRunner.start(1, 0);
    try {
      // The worker is claiming: the other tenant's job runs to its end…
      expect((await waitForJob(tenantGet(b.key), control.id)).status).toBe("succeeded");
      // …and, several polls later, the suspended tenant's has not been started, nor counted as an attempt.
      await sleep(500);
      expect(await jobRow(waiting.id)).toEqual({ status: "queued", attempts: 0 });
      const depth = await readQueueDepth(fence.fence.db);
      expect(depth.filter((d) => d.tenantId === a.id)).toEqual([{ tenantId: a.id, status: "queued", priority: expect.any(String), count: 1 }]);
      expect((await countTenantRows(fence, a.id)).documents).toBe(0);

      await resume(a.id);
      const ran = await waitForJob(tenantGet(a.key), waiting.id);
      expect(ran).toMatchObject({ status: "succeeded", attempts: 1 });
      expect((await countTenantRows(fence, a.id)).documents).toBe(1);
    } finally {
      await fence.fence.jobRunner.stop();
    }
  });

  it("shows a suspended tenant's console session why its pages are closed, refuses its sign-in with the same words, and opens again on resume", async () => {
    const a = await fence.createTenant("suspended-console", "enterprise");
    const session = await signedIn(a.key);
    expect((await session.fetch("GET", "/console/overview")).status).toBe(200);

    await suspend(a.id);
    for (const path of ["/console/overview", "/console/documents", "/console/keys"]) {
      const res = await session.fetch("GET", path);
      expect(res.status, path).toBe(403);
      const html = await res.text();
      expect(html).toContain("Tenant suspended");
      expect(html).toContain(SUSPENDED_MESSAGE);
      // The session may still end itself (the sign-out form), and sees no tenant page in the navigation.
      expect(html).toContain('action="/console/sign-out"');
      expect(html).not.toContain('href="/console/documents"');
    }
    const fragment = await session.fetch("GET", "/console/documents", undefined, { "hx-request": "true" });
    expect(fragment.status).toBe(403);
    expect(await fragment.text()).toBe(SUSPENDED_MESSAGE);
    // A form posted meanwhile does nothing either.
    const csrf = csrfOf(await (await session.fetch("GET", "/console/overview")).text());
    expect((await session.fetch("POST", "/console/keys", { csrf, name: "while-suspended" })).status).toBe(403);

    // A new sign-in with the key is refused with the reason, and makes no session.
    const newcomer = new ConsoleBrowser(fence);
    const refused = await newcomer.signIn(a.key);
    expect(refused.status).toBe(403);
    const page = await refused.text();
    expect(page).toContain(SUSPENDED_MESSAGE);
    expect(page).not.toContain("Missing or invalid API key.");
    expect(newcomer.cookies.has(SESSION_COOKIE)).toBe(false);

    // The session survives the suspension: resuming the tenant opens its pages again.
    await resume(a.id);
    expect((await session.fetch("GET", "/console/overview")).status).toBe(200);
    const keys = (await (await fence.request("GET", "/v1/keys", { key: a.key })).json()) as { keys: { name: string }[] };
    expect(keys.keys.map((k) => k.name)).not.toContain("while-suspended");
    // And a suspended session can sign itself out.
    await suspend(a.id);
    const closed = await (await session.fetch("GET", "/console/overview")).text();
    expect((await session.fetch("POST", "/console/sign-out", { csrf: csrfOf(closed) })).status).toBe(303);
    expect(session.cookies.has(SESSION_COOKIE)).toBe(false);
    await resume(a.id);
  });

  it("suspends and resumes from the platform's tenants page, with the session's token only", async () => {
    const a = await fence.createTenant("console-suspendable", "enterprise");
    const admin = await signedIn(ADMIN_KEY);
    const before = await (await admin.fetch("GET", "/console/platform/tenants")).text();
    expect(before).toContain(`action="/console/platform/tenants/${a.id}/suspend"`);
    expect(before).not.toContain(`action="/console/platform/tenants/${a.id}/resume"`);
    const csrf = csrfOf(before);

    // Without the session's token, or from a tenant's session, nothing changes.
    expect((await admin.fetch("POST", `/console/platform/tenants/${a.id}/suspend`, { csrf: "forged" })).status).toBe(403);
    const tenantSession = await signedIn(a.key);
    expect((await tenantSession.fetch("POST", `/console/platform/tenants/${a.id}/suspend`, { csrf: await tenantSession.csrf() })).status).toBe(403);
    expect((await list(a.key)).status).toBe(200);

    const suspended = await admin.fetch("POST", `/console/platform/tenants/${a.id}/suspend`, { csrf });
    expect(suspended.status).toBe(303);
    expect(suspended.headers.get("location")).toBe("/console/platform/tenants?suspended");
    await expectError(await list(a.key), 403, "tenant_suspended");
    const tenant = ((await (await fence.admin("GET", "/tenants")).json()) as { tenants: TenantJson[] }).tenants.find((t) => t.id === a.id)!;
    const shown = await (await admin.fetch("GET", "/console/platform/tenants?suspended")).text();
    expect(shown).toContain("The tenant is suspended");
    expect(shown).toContain(`action="/console/platform/tenants/${a.id}/resume"`);
    expect(shown).toContain(`Suspended</span> since <time datetime="${tenant.suspended_at}">`);
    // Posted again (a second tab): still suspended, since the first time.
    expect((await admin.fetch("POST", `/console/platform/tenants/${a.id}/suspend`, { csrf })).status).toBe(303);
    expect(((await (await fence.admin("GET", "/tenants")).json()) as { tenants: TenantJson[] }).tenants.find((t) => t.id === a.id)!.suspended_at).toBe(tenant.suspended_at);

    expect((await admin.fetch("POST", `/console/platform/tenants/${a.id}/resume`, { csrf: "forged" })).status).toBe(403);
    await expectError(await list(a.key), 403, "tenant_suspended");
    const resumed = await admin.fetch("POST", `/console/platform/tenants/${a.id}/resume`, { csrf });
    expect(resumed.status).toBe(303);
    expect(resumed.headers.get("location")).toBe("/console/platform/tenants?resumed");
    expect((await list(a.key)).status).toBe(200);
    expect(await (await admin.fetch("GET", "/console/platform/tenants")).text()).toContain(`action="/console/platform/tenants/${a.id}/suspend"`);

    for (const id of ["00000000-0000-4000-8000-00000000abcd", "not-a-uuid"]) {
      expect((await admin.fetch("POST", `/console/platform/tenants/${id}/suspend`, { csrf })).status).toBe(404);
      expect((await admin.fetch("POST", `/console/platform/tenants/${id}/resume`, { csrf })).status).toBe(404);
    }
  });
});
