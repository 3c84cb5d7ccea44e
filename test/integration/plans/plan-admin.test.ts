import { randomBytes, randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { plans } from "../../../src/db/schema.js";
import { readTenantSettings } from "../../../src/plans/tenant-settings.js";
import { expectError } from "../../support/api-contract.js";
import { ADMIN_KEY, backends, TestFence, type TestTenant } from "../../support/harness.js";
import { contextFor, readJson } from "../../support/isolation-helpers.js";
import type { ErrorBody, PlanJson, PlanListJson, TenantConfigJson, TenantListJson } from "../../support/api-types.js";

/**
 * The admin surface of plans and per-tenant configuration: plans are data an admin can create and
 * replace; a tenant's overrides change by JSON merge patch, validated as a whole, and a tenant
 * moves plan only to one that exists. Every change is read back both over HTTP and through the
 * path requests use (`readTenantSettings` in the tenant's own transaction), so "applies without
 * restart" is checked, not assumed.
 */

const run = randomBytes(4).toString("hex");
const PLAN = `test-${run}`;
const FULL_PLAN = {
  tokens_per_day: 5000,
  tokens_per_month: 100_000,
  spend_per_month_micros: 2_500_000,
  preferred_model: "big-model",
  fallback_model: "small-model",
  downgrade_allowed: false,
  downgrade_threshold: 0.75,
  requests_per_minute: 30,
  tokens_per_minute: 20_000,
  max_concurrency: 3,
  scheduling_weight: 2,
  max_running_jobs: 3,
  max_queued_jobs: 50,
  max_queued_bytes: 5_000_000_000,
  features: { "chat.llm": false },
};

describe.each(backends)("plans and tenant configuration admin API on $name", (backend) => {
  let fence: TestFence;
  let tenant: TestTenant;

  const config = (id: string) => readJson<TenantConfigJson>(fence.admin("GET", `/tenants/${id}/config`));
  const patch = (id: string, body: unknown) => readJson<TenantConfigJson>(fence.admin("PATCH", `/tenants/${id}/config`, body));
  /** What the next request of the tenant will see. */
  const settingsSeenByRequests = async (t: TestTenant) => {
    const ctx = await contextFor(fence, t);
    return fence.fence.db.withTenant(ctx, (scope) => readTenantSettings(scope));
  };

  beforeAll(async () => {
    fence = await TestFence.start(backend);
    tenant = await fence.createTenant();
  });
  afterAll(async () => {
    if (tenant) await fence.admin("DELETE", `/tenants/${tenant.id}`);
    await fence?.fence.db.asPlatformAdmin("test-plans", (tx) => tx.delete(plans).where(sql`${plans.name} like ${`test-${run}%`}`));
    await fence?.close();
  });

  it("lists the seeded plans", async () => {
    const got = await readJson<PlanListJson>(fence.admin("GET", "/plans"));
    expect(got.status).toBe(200);
    expect(got.body.plans.map((p) => p.name)).toEqual(expect.arrayContaining(["free", "pro", "enterprise"]));
    const free = await readJson<PlanJson>(fence.admin("GET", "/plans/free"));
    expect(free.body).toMatchObject({ name: "free", downgrade_allowed: expect.any(Boolean), scheduling_weight: expect.any(Number) });
    await expectError(await fence.admin("GET", `/plans/nope-${run}`), 404, "not_found");
  });

  it("creates a plan with PUT, returns it with GET, and replaces it whole with a second PUT", async () => {
    const created = await readJson<PlanJson>(fence.admin("PUT", `/plans/${PLAN}`, FULL_PLAN));
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ name: PLAN, ...FULL_PLAN, updated_at: expect.any(String) });
    expect((await readJson<PlanJson>(fence.admin("GET", `/plans/${PLAN}`))).body).toEqual(created.body);
    expect((await readJson<PlanListJson>(fence.admin("GET", "/plans"))).body.plans).toContainEqual(created.body);

    // Replace: omitted optional fields take their defaults again, they do not keep the old values.
    const replaced = await readJson<PlanJson>(fence.admin("PUT", `/plans/${PLAN}`, { tokens_per_day: null, tokens_per_month: 9, spend_per_month_micros: 0 }));
    expect(replaced.status).toBe(200);
    expect(replaced.body).toEqual({
      name: PLAN,
      tokens_per_day: null,
      tokens_per_month: 9,
      spend_per_month_micros: 0,
      preferred_model: null,
      fallback_model: null,
      downgrade_allowed: true,
      downgrade_threshold: 0.9,
      requests_per_minute: null,
      tokens_per_minute: null,
      max_concurrency: null,
      scheduling_weight: 1,
      max_running_jobs: 1,
      max_queued_jobs: 1000,
      max_queued_bytes: 1024 * 1024 * 1024,
      features: {},
      updated_at: expect.any(String),
    });
    expect((await readJson<PlanJson>(fence.admin("GET", `/plans/${PLAN}`))).body).toEqual(replaced.body);
  });

  it("refuses bad plan bodies and names with 400, leaving the plan as it was", async () => {
    await fence.admin("PUT", `/plans/${PLAN}-bad`, FULL_PLAN);
    const { tokens_per_day: _omitted, ...withoutDayBudget } = FULL_PLAN;
    const bad: [string, unknown][] = [
      ["a missing budget", withoutDayBudget],
      ["a negative budget", { ...FULL_PLAN, tokens_per_month: -1 }],
      ["a fractional budget", { ...FULL_PLAN, tokens_per_day: 10.5 }],
      ["a budget as a string", { ...FULL_PLAN, spend_per_month_micros: "1000" }],
      ["a threshold above 1", { ...FULL_PLAN, downgrade_threshold: 1.5 }],
      ["a threshold below 0", { ...FULL_PLAN, downgrade_threshold: -0.1 }],
      ["a scheduling weight of 0", { ...FULL_PLAN, scheduling_weight: 0 }],
      ["zero concurrency", { ...FULL_PLAN, max_concurrency: 0 }],
      ["zero running jobs", { ...FULL_PLAN, max_running_jobs: 0 }],
      ["zero queued jobs", { ...FULL_PLAN, max_queued_jobs: 0 }],
      ["fractional queued bytes", { ...FULL_PLAN, max_queued_bytes: 1.5 }],
      ["an empty model name", { ...FULL_PLAN, preferred_model: " " }],
      ["a misspelt field", { ...FULL_PLAN, tokens_per_dya: 5 }],
      ["an unknown feature flag", { ...FULL_PLAN, features: { "chat.telepathy": false } }],
      ["a feature flag that is not a boolean", { ...FULL_PLAN, features: { "chat.llm": "no" } }],
      ["a non-object body", [FULL_PLAN]],
    ];
    for (const [what, body] of bad) {
      const res = await fence.admin("PUT", `/plans/${PLAN}-bad`, body);
      expect(res.status, what).toBe(400);
      expect(((await res.json()) as ErrorBody).error.code, what).toBe("validation_error");
    }
    for (const name of ["Upper", "has space", "-leading-dash", "x".repeat(51)]) {
      await expectError(await fence.admin("PUT", `/plans/${encodeURIComponent(name)}`, FULL_PLAN), 400, "validation_error");
    }
    expect((await readJson<PlanJson>(fence.admin("GET", `/plans/${PLAN}-bad`))).body).toMatchObject(FULL_PLAN);
  });

  it("starts a tenant with no overrides on the free plan", async () => {
    const fresh = await fence.createTenant();
    const got = await config(fresh.id);
    expect(got.status).toBe(200);
    expect(got.body).toEqual({ tenant_id: fresh.id, plan: "free", overrides: {}, updated_at: null });
    await fence.admin("DELETE", `/tenants/${fresh.id}`);
  });

  it("merges PATCHes into the overrides, nested flags key by key, and removes keys set to null", async () => {
    const first = await patch(tenant.id, { persona: "  You are Acme's helpful HR assistant.  ", features: { "chat.llm": false }, retrieval_k: 5 });
    expect(first.status).toBe(200);
    expect(first.body.overrides).toEqual({ persona: "You are Acme's helpful HR assistant.", features: { "chat.llm": false }, retrieval_k: 5 });
    expect(first.body.updated_at).not.toBeNull();

    const second = await patch(tenant.id, { persona: null, answer_style: "bullet_points", features: { "ingest.pdf": false } });
    expect(second.body.overrides).toEqual({ answer_style: "bullet_points", features: { "chat.llm": false, "ingest.pdf": false }, retrieval_k: 5 });

    const third = await patch(tenant.id, { features: { "chat.llm": null }, retrieval_k: null });
    expect(third.body.overrides).toEqual({ answer_style: "bullet_points", features: { "ingest.pdf": false } });
    expect((await config(tenant.id)).body).toEqual(third.body);
    expect((await settingsSeenByRequests(tenant)).overrides).toEqual(third.body.overrides);
  });

  it("refuses invalid overrides with 400 and changes nothing", async () => {
    const before = (await config(tenant.id)).body;
    const bad = [
      { retrieval_k: 0 },
      { retrieval_k: 51 },
      { answer_style: "poetic" },
      { model_tier: "premium" },
      { features: { "not a flag": true } },
      { features: { "chat.llm": "off" } },
      { persona: "x".repeat(2001) },
      { colour: "blue" },
    ];
    for (const body of bad) {
      const res = await fence.request("PATCH", `/v1/admin/tenants/${tenant.id}/config`, { key: ADMIN_KEY, body: JSON.stringify(body), headers: { "content-type": "application/json" } });
      await expectError(res, 400, "validation_error");
    }
    expect((await config(tenant.id)).body).toEqual(before);

    // A `__proto__` key (JSON.parse makes it an own key) must neither set a field nor pollute
    // prototypes. The request schema drops it, so the patch is empty: refused or a no-op, never a change.
    const proto = await fence.request("PATCH", `/v1/admin/tenants/${tenant.id}/config`, {
      key: ADMIN_KEY,
      body: '{"__proto__": {"retrieval_k": 3, "persona": "polluted"}}',
      headers: { "content-type": "application/json" },
    });
    expect([200, 400]).toContain(proto.status);
    expect((await config(tenant.id)).body.overrides).toEqual(before.overrides);
    expect(({} as Record<string, unknown>).retrieval_k).toBeUndefined();
  });

  it("validates the merged result, so a bad stored value must be fixed or removed by the patch", async () => {
    const t = await fence.createTenant();
    await fence.fence.db.asOwner((tx) => tx.execute(sql`INSERT INTO tenant_configs (tenant_id, overrides) VALUES (${t.id}::uuid, '{"retrieval_k": 999}'::jsonb)`));
    await expectError(await fence.admin("PATCH", `/tenants/${t.id}/config`, { persona: "hello" }), 400, "validation_error");
    const fixed = await patch(t.id, { persona: "hello", retrieval_k: null });
    expect(fixed.body.overrides).toEqual({ persona: "hello" });
    await fence.admin("DELETE", `/tenants/${t.id}`);
  });

  it("answers 404 for an unknown or malformed tenant id", async () => {
    for (const id of [randomUUID(), "not-a-uuid"]) {
      await expectError(await fence.admin("GET", `/tenants/${id}/config`), 404, "not_found");
      await expectError(await fence.admin("PATCH", `/tenants/${id}/config`, { retrieval_k: 3 }), 404, "not_found");
      await expectError(await fence.admin("PATCH", `/tenants/${id}/config`, { plan: "pro" }), 404, "not_found");
    }
  });

  it("moves a tenant to another plan, and refuses an unknown plan with 400 without applying the rest", async () => {
    await fence.admin("PUT", `/plans/${PLAN}`, FULL_PLAN);
    const moved = await patch(tenant.id, { plan: "pro" });
    expect(moved.status).toBe(200);
    expect(moved.body.plan).toBe("pro");
    const listed = (await readJson<TenantListJson>(fence.admin("GET", "/tenants"))).body.tenants;
    expect(listed.find((t) => t.id === tenant.id)?.plan).toBe("pro");
    expect((await settingsSeenByRequests(tenant)).plan.name).toBe("pro");

    const before = (await config(tenant.id)).body;
    await expectError(await fence.admin("PATCH", `/tenants/${tenant.id}/config`, { plan: `nope-${run}` }), 400, "validation_error");
    await expectError(await fence.admin("PATCH", `/tenants/${tenant.id}/config`, { plan: `nope-${run}`, retrieval_k: 7 }), 400, "validation_error");
    await expectError(await fence.admin("PATCH", `/tenants/${tenant.id}/config`, { plan: "Not A Slug" }), 400, "validation_error");
    // A valid plan with invalid overrides: neither is applied.
    await expectError(await fence.admin("PATCH", `/tenants/${tenant.id}/config`, { plan: PLAN, retrieval_k: 0 }), 400, "validation_error");
    expect((await config(tenant.id)).body).toEqual(before);

    const custom = await patch(tenant.id, { plan: PLAN, retrieval_k: 7 });
    expect(custom.body).toMatchObject({ plan: PLAN, overrides: { ...before.overrides, retrieval_k: 7 } });
    const seen = await settingsSeenByRequests(tenant);
    expect(seen.plan).toMatchObject({ name: PLAN, tokensPerDay: FULL_PLAN.tokens_per_day, preferredModel: FULL_PLAN.preferred_model });
  });

  it("loses no update when patches of one tenant race", async () => {
    const t = await fence.createTenant();
    const flags = Array.from({ length: 12 }, (_, i) => `test.flag_${String.fromCharCode(97 + i)}`);
    const replies = await Promise.all(flags.map((flag) => fence.admin("PATCH", `/tenants/${t.id}/config`, { features: { [flag]: false } })));
    expect(replies.map((r) => r.status)).toEqual(flags.map(() => 200));
    expect((await config(t.id)).body.overrides).toEqual({ features: Object.fromEntries(flags.map((f) => [f, false])) });
    await fence.admin("DELETE", `/tenants/${t.id}`);
  });

  it("refuses tenant keys on every plan and config route", async () => {
    const routes: [string, string, unknown?][] = [
      ["GET", "/v1/admin/plans"],
      ["GET", "/v1/admin/plans/free"],
      ["PUT", `/v1/admin/plans/${PLAN}-intruder`, FULL_PLAN],
      ["GET", `/v1/admin/tenants/${tenant.id}/config`],
      ["PATCH", `/v1/admin/tenants/${tenant.id}/config`, { plan: "enterprise" }],
    ];
    for (const [method, path, json] of routes) {
      for (const key of [tenant.key, undefined, "wrong-admin-key-0123456789"]) {
        await expectError(await fence.request(method, path, { key, json }), 401, "unauthorized");
      }
    }
    await expectError(await fence.admin("GET", `/plans/${PLAN}-intruder`), 404, "not_found");
    expect((await config(tenant.id)).body.plan).not.toBe("enterprise");
  });
});
