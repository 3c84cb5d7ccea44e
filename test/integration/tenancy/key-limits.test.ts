import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KEY_CHANGES_CHANNEL } from "../../../src/db/key-changes.js";
import { keyMonthOf } from "../../../src/metering/ledger.js";
import { usageCounters } from "../../../src/db/schema.js";
import { and, eq, like } from "drizzle-orm";
import { startFakeOpenAI, type FakeOpenAI, type RecordedRequest } from "../../support/fake-openai.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { readJson } from "../../support/isolation-helpers.js";
import { counters, eventually, ledgerRows, putTenantOnPlan } from "../../support/metering-helpers.js";
import type { ApiKeyJson, AuditEventListJson, ErrorBody, ErrorBodyWith, IssuedKeyJson, LimitsJson, UsageReportJson } from "../../support/api-types.js";

/**
 * Issue 18, a key's limits of its own: monthly token and spend caps (402 like the tenant's
 * budgets, reserved the same way, counted over that key's usage only), edited by an owner with
 * PATCH /v1/keys/:id within its own limits and its plan, and `last_used_at` kept without a write
 * per request (and without telling every instance to drop its verified keys).
 */
const COMPLETIONS = "/v1/chat/completions";
const MAX_OUTPUT = 50;
const DOC = { title: "Refund policy", text: "Customers can request a refund within 30 days of purchase. Refunds go back to the original card." };
const question = (n: number) => `How many days do customers have to request a refund? (ref ${String(n).padStart(3, "0")})`;

type BudgetError = ErrorBodyWith<{ budget: string; budget_of: string; key_id?: string; limit: number; used: number; reserved: number }>;
type BeyondPlanError = ErrorBodyWith<{ field: string; plan: string; limit: number }>;

/** What Fence reserves for a chat: its input estimate (~3 chars a token) plus the output cap. */
function reservationFor(request: RecordedRequest): number {
  const messages = request.body.messages as { content: string }[];
  return Math.ceil(messages.map((m) => m.content).join("\n").length / 3) + MAX_OUTPUT;
}

describe.each(backends)("a key's own limits on $name", (backend) => {
  let llm: FakeOpenAI;
  let fence: TestFence;
  const completions = () => llm.requests.filter((r) => r.path === COMPLETIONS);
  const chat = (key: string, q: string) => fence.request("POST", "/v1/chat", { key, json: { question: q } });
  const search = (key: string, q: string) => fence.request("POST", "/v1/search", { key, json: { query: q } });
  const limitsOf = async (key: string) => (await readJson<LimitsJson>(fence.request("GET", "/v1/limits", { key }))).body;
  const patchKey = (ownerKey: string, keyId: string, json: unknown) => fence.request("PATCH", `/v1/keys/${keyId}`, { key: ownerKey, json });

  async function issue(tenant: TestTenant, body: Record<string, unknown> = {}): Promise<IssuedKeyJson> {
    const res = await fence.admin("POST", `/tenants/${tenant.id}/keys`, { name: "limited", ...body });
    expect(res.status, await res.clone().text()).toBe(201);
    return (await res.json()) as IssuedKeyJson;
  }
  async function make(ownerKey: string, body: Record<string, unknown>): Promise<Response> {
    return fence.request("POST", "/v1/keys", { key: ownerKey, json: { name: "made", ...body } });
  }
  async function keyView(ownerKey: string, keyId: string): Promise<ApiKeyJson | undefined> {
    const res = await readJson<{ keys: ApiKeyJson[] }>(fence.request("GET", "/v1/keys?include_revoked=true", { key: ownerKey }));
    expect(res.status).toBe(200);
    return res.body.keys.find((k) => k.id === keyId);
  }
  async function tenantWithDocument(planValues: Parameters<typeof putTenantOnPlan>[3] = {}): Promise<TestTenant> {
    const tenant = await fence.createTenant();
    await putTenantOnPlan(fence, tenant, `keycap-${tenant.id.slice(0, 8)}`, planValues);
    await fence.upload(tenant, DOC);
    return tenant;
  }
  /** Embeds the questions once, as the owner: later chats hit the tenant's embedding cache, so they charge only their LLM call. */
  async function warm(tenant: TestTenant, questions: string[]) {
    for (const q of questions) expect((await search(tenant.key, q)).status).toBe(200);
  }

  beforeAll(async () => {
    llm = await startFakeOpenAI();
    fence = await TestFence.start(backend, {
      // An internal rate for models without a price: every charge then costs money, so spend caps bite.
      env: { FENCE_JOB_WORKERS: "0", FENCE_INTERNAL_MICROS_PER_MTOK: "1000000", LLM_BASE_URL: llm.url, LLM_MODEL: "big-model", LLM_FALLBACK_MODEL: "small-model", LLM_MAX_OUTPUT_TOKENS: String(MAX_OUTPUT) },
    });
  });
  afterAll(async () => {
    await fence?.close();
    await llm?.close();
  });

  it("lets exactly 3 of 20 concurrent chats of a capped key through, refuses the rest with 402 naming the key, and leaves the tenant's other keys alone", async () => {
    const tenant = await tenantWithDocument();
    await warm(tenant, [998, 999, ...Array.from({ length: 20 }, (_, i) => i)].map(question));
    const capped = await issue(tenant, { tokens_per_month: 1_000_000 });
    expect((await chat(capped.key, question(999))).status).toBe(200);
    const reserved = reservationFor(completions().at(-1)!);
    const before = await limitsOf(capped.key);
    expect(before.key_budgets).toMatchObject({ key_id: capped.id, tokens_per_month: { limit: 1_000_000, reserved: 0 } });
    const used = before.key_budgets.tokens_per_month.used;
    expect(used).toBeGreaterThan(0);
    // The owner lowers the key's cap: room for 3 more reservations, not a 4th.
    const patched = await patchKey(tenant.key, capped.id, { tokens_per_month: used + 4 * reserved - 1 });
    expect(patched.status, await patched.clone().text()).toBe(200);

    const callsBefore = completions().length;
    const release = llm.holdChat();
    let answered = 0;
    const responses = Array.from({ length: 20 }, (_, i) =>
      Promise.resolve(chat(capped.key, question(i))).then(async (res) => {
        answered++;
        return { status: res.status, body: (await res.json()) as BudgetError };
      }),
    );
    try {
      await eventually(async () => (answered >= 17 && completions().length - callsBefore >= 3 ? true : undefined), 60_000);
      expect(answered).toBe(17);
      expect(completions().length - callsBefore).toBe(3);
    } finally {
      release();
    }
    const results = await Promise.all(responses);
    expect(results.filter((r) => r.status === 200)).toHaveLength(3);
    const refused = results.filter((r) => r.status === 402);
    expect(refused).toHaveLength(17);
    expect(refused[0]!.body.error.message).toMatch(/cap of this API key is exhausted/);
    expect(refused[0]!.body.error.details).toMatchObject({ budget: "tokens_per_month", budget_of: "key", key_id: capped.id });
    // The cap is the key's: the tenant's owner key still chats.
    expect((await chat(tenant.key, question(998))).status).toBe(200);

    // The key's counter is its ledger, exactly; nothing stays reserved.
    const after = await limitsOf(capped.key);
    const keyTokens = (await ledgerRows(fence, tenant))
      .filter((r) => r.keyId === capped.id && r.status === "charged")
      .reduce((sum, r) => sum + r.inputTokens + r.outputTokens, 0);
    expect(after.key_budgets.tokens_per_month).toMatchObject({ used: keyTokens, reserved: 0 });
    expect(after.key_budgets.tokens_per_month.used).toBeLessThanOrEqual(used + 4 * reserved - 1);
  });

  it("refuses a key past its monthly spend cap with 402 before the provider is called", async () => {
    const tenant = await tenantWithDocument();
    await warm(tenant, [question(1)]);
    const broke = await issue(tenant, { spend_per_month_micros: 0 });
    const calls = completions().length;
    const res = await readJson<BudgetError>(chat(broke.key, question(1)));
    expect(res.status).toBe(402);
    expect(res.body.error.details).toMatchObject({ budget: "spend_per_month_micros", budget_of: "key", key_id: broke.id, limit: 0 });
    expect(completions().length).toBe(calls);
  });

  it("adds per-key spend up exactly to the tenant's metered total under concurrent requests of three keys", async () => {
    const tenant = await tenantWithDocument();
    const keys = [await issue(tenant, { name: "k1" }), await issue(tenant, { name: "k2" }), await issue(tenant, { name: "k3" })];
    // Distinct questions, not warmed: every request charges its own query embedding, and each chat its LLM call.
    const work = keys.flatMap((key, k) =>
      Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? chat(key.key, `${question(100 + i)} from key ${k}`) : search(key.key, `refund window ${k}-${i}`))),
    );
    const statuses = (await Promise.all(work)).map((res) => res.status);
    expect(statuses.every((s) => s === 200)).toBe(true);

    const rows = (await ledgerRows(fence, tenant)).filter((r) => r.status === "charged");
    const sum = (selected: typeof rows) => ({
      tokens: selected.reduce((s, r) => s + r.inputTokens + r.outputTokens, 0),
      cost: selected.reduce((s, r) => s + r.costMicros, 0),
    });
    const { month } = await counters(fence, tenant);
    // Every charged event names its key, and the tenant's counter is the sum of its keys' counters.
    expect(rows.every((r) => r.keyId !== null)).toBe(true);
    const keyCounters = await fence.fence.db.asPlatformAdmin("test: key counters", (tx) =>
      tx
        .select()
        .from(usageCounters)
        .where(and(eq(usageCounters.tenantId, tenant.id), like(usageCounters.period, "key:%"))),
    );
    const ids = [tenant.keyId, ...keys.map((k) => k.id)];
    for (const id of ids) {
      const counter = keyCounters.find((c) => c.period === keyMonthOf(id, new Date()));
      const ledger = sum(rows.filter((r) => r.keyId === id));
      expect({ tokens: counter?.tokens ?? 0, cost: counter?.costMicros ?? 0 }, id).toEqual(ledger);
    }
    expect(keyCounters.reduce((s, c) => s + c.tokens, 0)).toBe(month.tokens);
    expect(keyCounters.reduce((s, c) => s + c.costMicros, 0)).toBe(month.costMicros);
    expect(sum(rows)).toEqual({ tokens: month.tokens, cost: month.costMicros });
    for (const key of keys) expect(sum(rows.filter((r) => r.keyId === key.id)).cost).toBeGreaterThan(0);

    // The owner's showback by key says the same.
    const byKey = await readJson<UsageReportJson>(fence.request("GET", "/v1/usage?group_by=key", { key: tenant.key }));
    expect(byKey.status).toBe(200);
    expect(byKey.body.totals.cost_micros).toBe(month.costMicros);
    expect(byKey.body.rows.reduce((s, r) => s + r.cost_micros, 0)).toBe(month.costMicros);
    for (const key of keys) {
      expect(byKey.body.rows.find((r) => r.key === key.id)?.cost_micros).toBe(sum(rows.filter((r) => r.keyId === key.id)).cost);
    }
  });

  it("bounds a key's limits by the key making the change (400) and by the plan (403 beyond_plan); the admin is bounded by neither", async () => {
    const tenant = await fence.createTenant();
    await putTenantOnPlan(fence, tenant, `keycap-${tenant.id.slice(0, 8)}`, { tokensPerMonth: 50_000, requestsPerMinute: 600 });
    const ownerCapped = await issue(tenant, { name: "capped owner", tokens_per_month: 1000, spend_per_month_micros: 500 });

    // Made by a capped key: higher caps refused, left-out caps inherited.
    for (const body of [{ tokens_per_month: 1001 }, { spend_per_month_micros: 501 }]) {
      const res = await make(ownerCapped.key, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as ErrorBody).error.code).toBe("validation_error");
    }
    const child = (await (await make(ownerCapped.key, { scopes: ["query"], tokens_per_month: 10 })).json()) as IssuedKeyJson;
    expect(child).toMatchObject({ tokens_per_month: 10, spend_per_month_micros: 500 });

    // Editing: not above the acting key's own, not null when it has one; a capped owner cannot raise itself.
    for (const [target, body] of [
      [child.id, { tokens_per_month: 1001 }],
      [child.id, { tokens_per_month: null }],
      [ownerCapped.id, { tokens_per_month: 2000 }],
      [ownerCapped.id, { spend_per_month_micros: null }],
    ] as const) {
      const res = await patchKey(ownerCapped.key, target, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect(await keyView(tenant.key, ownerCapped.id)).toMatchObject({ tokens_per_month: 1000, spend_per_month_micros: 500 });
    const lowered = await readJson<ApiKeyJson>(patchKey(ownerCapped.key, child.id, { tokens_per_month: 5, description: "lowered" }));
    expect(lowered.status).toBe(200);
    expect(lowered.body).toMatchObject({ id: child.id, tokens_per_month: 5, spend_per_month_micros: 500, description: "lowered", name: "made" });

    // Beyond the plan, even for an unlimited owner key: 403, nothing changed.
    for (const body of [{ tokens_per_month: 50_001 }, { requests_per_minute: 601 }]) {
      const res = await readJson<BeyondPlanError>(patchKey(tenant.key, child.id, body));
      expect(res.status, JSON.stringify(body)).toBe(403);
      expect(res.body.error.code).toBe("beyond_plan");
      expect(res.body.error.details.field).toBe(Object.keys(body)[0]);
      const made = await readJson<BeyondPlanError>(make(tenant.key, body));
      expect(made.status).toBe(403);
    }
    expect(await keyView(tenant.key, child.id)).toMatchObject({ tokens_per_month: 5, requests_per_minute: null });
    // The platform admin grants anything.
    expect((await issue(tenant, { tokens_per_month: 10_000_000, requests_per_minute: 100_000 })).tokens_per_month).toBe(10_000_000);

    // Audited, before and after.
    const audit = await readJson<AuditEventListJson>(fence.request("GET", "/v1/audit?action=key.updated", { key: tenant.key }));
    const event = audit.body.events.find((e) => e.target_id === child.id);
    expect(event).toMatchObject({ actor: "key", actor_key_id: ownerCapped.id, before: { tokens_per_month: 10 }, after: { tokens_per_month: 5, description: "lowered" } });
  });

  it("answers PATCH of another tenant's key, a revoked key and a made-up id alike, and refuses bad bodies", async () => {
    const a = await fence.createTenant();
    const b = await fence.createTenant();
    const revoked = await issue(a, { name: "to revoke" });
    expect((await fence.request("DELETE", `/v1/keys/${revoked.id}`, { key: a.key })).status).toBe(204);
    const made = await readJson<ErrorBody>(patchKey(a.key, "00000000-0000-4000-8000-000000000000", { name: "x" }));
    expect(made.status).toBe(404);
    for (const target of [b.keyId, revoked.id]) {
      const res = await readJson<ErrorBody>(patchKey(a.key, target, { name: "taken", tokens_per_month: 1 }));
      expect(res.status).toBe(404);
      expect({ ...res.body.error, request_id: undefined }).toEqual({ ...made.body.error, request_id: undefined });
    }
    expect(await keyView(b.key, b.keyId)).toMatchObject({ name: "test", tokens_per_month: null });
    for (const body of [{}, { colour: "red" }, { tokens_per_month: -1 }, { requests_per_minute: 0 }, { name: "" }, [1]]) {
      const res = await patchKey(a.key, a.keyId, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
  });

  it("keeps last_used_at to the minute without a write per request, and without dropping any instance's verified keys", async () => {
    const tenant = await fence.createTenant();
    const key = await issue(tenant, { scopes: ["read"] });
    expect((await keyView(tenant.key, key.id))?.last_used_at).toBeNull();
    const feed = (await fence.fence.db.openChangeFeed(KEY_CHANGES_CHANNEL, () => undefined))!;
    expect(feed).toBeDefined();
    const announced: string[] = [];
    feed.subscribe((payload) => announced.push(payload));
    try {
      const start = Date.now();
      expect((await fence.request("GET", "/v1/limits", { key: key.key })).status).toBe(200);
      const first = (await keyView(tenant.key, key.id))?.last_used_at;
      expect(first).not.toBeNull();
      expect(Date.parse(first!)).toBeGreaterThanOrEqual(start - 1000);
      expect(Date.parse(first!)).toBeLessThanOrEqual(Date.now());
      // Used again within the minute: nothing more is written.
      for (let i = 0; i < 5; i++) expect((await fence.request("GET", "/v1/limits", { key: key.key })).status).toBe(200);
      expect((await keyView(tenant.key, key.id))?.last_used_at).toBe(first);
      await sleep(300);
      expect(announced.filter((p) => p === `tenant:${tenant.id}`)).toEqual([]);
      // A real change is announced (the control: the feed is listening).
      expect((await patchKey(tenant.key, key.id, { description: "seen" })).status).toBe(200);
      await eventually(async () => (announced.includes(`tenant:${tenant.id}`) ? true : undefined), 5_000);
    } finally {
      await feed.close();
    }
  });
});
