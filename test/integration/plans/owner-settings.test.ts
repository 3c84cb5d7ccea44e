import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { plans } from "../../../src/db/schema.js";
import { expectError } from "../../support/api-contract.js";
import { startFakeOpenAI, type FakeOpenAI, type RecordedRequest } from "../../support/fake-openai.js";
import { ADMIN_KEY, backends, TestFence, type TestTenant } from "../../support/harness.js";
import { readJson } from "../../support/isolation-helpers.js";
import { parseSse } from "../../support/metering-helpers.js";
import type { AdminAuditEventListJson, AuditEventListJson, ChatBody, ErrorBodyWith, IssuedKeyJson, PlanJson, RunJson, SettingsJson, TenantConfigJson } from "../../support/api-types.js";

/**
 * The owner's own settings (issue 18): GET/PATCH /v1/settings with an `owner` key. Persona,
 * answer style, retrieval k and feature flags are the tenant's, merge-patched, persisted in the
 * store the admin sees, and they change what chat does; the plan and everything it pays for stay
 * the platform admin's (403 `beyond_plan`, nothing changed), as does switching on a flag the plan
 * leaves out. Bad input is 400 with nothing changed, other scopes are 403, another tenant never
 * sees or changes the settings, every change is audited with the key that made it, and
 * concurrent patches of different fields all survive.
 */

const run = randomBytes(4).toString("hex");
/** A plan that leaves `chat.llm` out; unique per run, removed afterwards. */
const NO_LLM_PLAN = `test-settings-${run}`;
const COMPLETIONS = "/v1/chat/completions";
const FLAGS = ["chat.streaming", "chat.llm", "ingest.pdf"] as const;
const ALL_ON = Object.fromEntries(FLAGS.map((flag) => [flag, { enabled: true, in_plan: true, available: true }]));

/** Fields only the platform admin sets, each with a value the admin API would accept. */
const PLATFORM_FIELDS: [string, unknown][] = [
  ["plan", "pro"],
  ["model_tier", "fallback"],
  ["debug_log_prompts_until", new Date(Date.now() + 3_600_000).toISOString()],
  ["tokens_per_day", 1_000_000_000],
  ["tokens_per_month", 1_000_000_000],
  ["spend_per_month_micros", 1_000_000_000],
  ["preferred_model", "the-biggest-model"],
  ["fallback_model", "another-model"],
  ["downgrade_allowed", false],
  ["downgrade_threshold", 1],
  ["requests_per_minute", 1_000_000],
  ["tokens_per_minute", 1_000_000],
  ["max_concurrency", 1000],
  ["scheduling_weight", 1000],
  ["max_running_jobs", 1000],
  ["max_queued_jobs", 1_000_000],
  ["max_queued_bytes", 1_000_000_000_000],
];

const systemPromptOf = (request: RecordedRequest) => (request.body.messages as { role: string; content: string }[]).find((m) => m.role === "system")!.content;

describe.each(backends)("owner settings on $name", (backend) => {
  let llm: FakeOpenAI;
  let fence: TestFence;
  let a: TestTenant;
  let b: TestTenant;
  const made: TestTenant[] = [];
  let asked = 0;
  const completions = () => llm.requests.filter((r) => r.path === COMPLETIONS);

  const settingsOf = (key: string) => readJson<SettingsJson>(fence.request("GET", "/v1/settings", { key }));
  const patchSettings = (key: string, json: unknown) => readJson<SettingsJson>(fence.request("PATCH", "/v1/settings", { key, json }));
  async function patchOk(key: string, json: unknown): Promise<SettingsJson> {
    const res = await patchSettings(key, json);
    expect(res.status, `${JSON.stringify(json)} → ${res.text}`).toBe(200);
    return res.body;
  }
  async function configOf(tenant: TestTenant): Promise<TenantConfigJson> {
    const res = await readJson<TenantConfigJson>(fence.admin("GET", `/tenants/${tenant.id}/config`));
    expect(res.status, res.text).toBe(200);
    return res.body;
  }
  async function adminPatch(tenant: TestTenant, json: unknown): Promise<TenantConfigJson> {
    const res = await readJson<TenantConfigJson>(fence.admin("PATCH", `/tenants/${tenant.id}/config`, json));
    expect(res.status, res.text).toBe(200);
    return res.body;
  }
  async function settingsEvents(tenant: TestTenant): Promise<AuditEventListJson["events"]> {
    const res = await readJson<AuditEventListJson>(fence.request("GET", "/v1/audit?action=settings.patched&limit=100", { key: tenant.key }));
    expect(res.status, res.text).toBe(200);
    return res.body.events;
  }
  /** Everything a refused PATCH must leave as it was: the stored config, the owner's view, the trail. */
  async function snapshot(tenant: TestTenant) {
    const settings = await settingsOf(tenant.key);
    expect(settings.status).toBe(200);
    return { config: await configOf(tenant), settings: settings.body, events: (await settingsEvents(tenant)).map((e) => e.id) };
  }
  async function tenant(prefix: string, plan = "enterprise"): Promise<TestTenant> {
    const t = await fence.createTenant(`${prefix}-${run}`, plan);
    made.push(t);
    return t;
  }
  async function keyWith(owner: TestTenant, scopes: string[], name = `only-${scopes.join("-")}`): Promise<IssuedKeyJson> {
    const res = await readJson<IssuedKeyJson>(fence.admin("POST", `/tenants/${owner.id}/keys`, { name, scopes }));
    expect(res.status, res.text).toBe(201);
    return res.body;
  }
  /** A question no earlier one repeats, so the answer cache never answers it. */
  const question = (topic: string) => `${topic} (question ${++asked})`;
  const chat = (t: TestTenant, q: string, stream = false) => fence.request("POST", "/v1/chat", { key: t.key, json: { question: q, ...(stream ? { stream: true } : {}) } });

  beforeAll(async () => {
    llm = await startFakeOpenAI();
    llm.setAnswer(() => "Refunds are possible within 30 days [1].");
    fence = await TestFence.start(backend, { env: { LLM_BASE_URL: llm.url, LLM_MODEL: "fake-model", LLM_MAX_RETRIES: "0", FENCE_JOB_WORKERS: "0" } });
    a = await tenant("settings-a");
    b = await tenant("settings-b");
    const corpus = {
      "Refund policy": "Customers can request a refund within 30 days of purchase. Refunds go back to the original card.",
      "Refund exceptions": "Gift cards cannot be refunded. Refunds for sale items are store credit only.",
      "Refund processing": "A refund is processed within 5 working days after the returned item arrives.",
      "Shipping times": "Express shipping takes 2 days. Standard shipping takes 5 to 7 days.",
      "Warranty terms": "The warranty lasts 12 months. An extended warranty costs 20 euros.",
    };
    for (const [title, text] of Object.entries(corpus)) await fence.upload(a, { title, text });
    await fence.upload(b, { title: "Kayak rental", text: "Kayaks can be rented by the hour at the harbour office." });
  });
  afterAll(async () => {
    for (const t of made) await fence?.admin("DELETE", `/tenants/${t.id}`);
    await fence?.fence.db.asPlatformAdmin("test-plans", (tx) => tx.delete(plans).where(sql`${plans.name} like ${`test-settings-${run}%`}`));
    await fence?.close();
    await llm?.close();
  });

  it("starts with no settings, every flag on and in a seeded plan, and never updated", async () => {
    const fresh = await tenant("settings-fresh");
    const got = await settingsOf(fresh.key);
    expect(got.status, got.text).toBe(200);
    expect(got.body).toEqual({ plan: "enterprise", persona: null, answer_style: null, retrieval_k: null, features: ALL_ON, updated_at: null });
    // The `free` plan, too, includes every flag.
    const free = await tenant("settings-free", "free");
    expect((await settingsOf(free.key)).body).toEqual({ ...got.body, plan: "free" });
  });

  it("sets persona, answer style and retrieval k, keeps them, shows them to the admin, and null restores each", async () => {
    const t = await tenant("settings-set");
    const set = await patchOk(t.key, { persona: "  You are Acme's cheerful helper.  ", answer_style: "bullet_points", retrieval_k: 7 });
    expect(set).toEqual({
      plan: "enterprise",
      persona: "You are Acme's cheerful helper.",
      answer_style: "bullet_points",
      retrieval_k: 7,
      features: ALL_ON,
      updated_at: expect.any(String),
    });
    expect(Date.parse(set.updated_at!)).toBeGreaterThan(Date.now() - 60_000);
    expect((await settingsOf(t.key)).body).toEqual(set);
    const config = await configOf(t);
    expect(config).toEqual({
      tenant_id: t.id,
      plan: "enterprise",
      overrides: { persona: "You are Acme's cheerful helper.", answer_style: "bullet_points", retrieval_k: 7 },
      updated_at: set.updated_at,
    });

    // A merge patch: what is left out stays.
    const styled = await patchOk(t.key, { answer_style: "concise" });
    expect(styled).toMatchObject({ persona: "You are Acme's cheerful helper.", answer_style: "concise", retrieval_k: 7 });
    expect(Date.parse(styled.updated_at!)).toBeGreaterThanOrEqual(Date.parse(set.updated_at!));

    const partly = await patchOk(t.key, { persona: null, retrieval_k: null });
    expect(partly).toMatchObject({ persona: null, answer_style: "concise", retrieval_k: null });
    expect((await configOf(t)).overrides).toEqual({ answer_style: "concise" });

    const cleared = await patchOk(t.key, { answer_style: null });
    expect(cleared).toMatchObject({ persona: null, answer_style: null, retrieval_k: null, features: ALL_ON });
    expect(cleared.updated_at).not.toBeNull();
    expect((await settingsOf(t.key)).body).toEqual(cleared);
    expect((await configOf(t)).overrides).toEqual({});

    // An empty patch changes nothing but is not an error.
    expect(await patchOk(t.key, {})).toMatchObject({ persona: null, answer_style: null, retrieval_k: null, features: ALL_ON });
  });

  it("switches flags off and on again, flag by flag, and null returns a flag to its plan's value", async () => {
    const t = await tenant("settings-flags");
    const off = await patchOk(t.key, { features: { "chat.streaming": false, "ingest.pdf": false } });
    expect(off.features).toEqual({
      "chat.streaming": { enabled: false, in_plan: true, available: true },
      "chat.llm": { enabled: true, in_plan: true, available: true },
      "ingest.pdf": { enabled: false, in_plan: true, available: true },
    });
    expect((await configOf(t)).overrides).toEqual({ owner_features: { "chat.streaming": false, "ingest.pdf": false } });
    const on = await patchOk(t.key, { features: { "chat.streaming": true } });
    expect(on.features["chat.streaming"]).toEqual({ enabled: true, in_plan: true, available: true });
    expect(on.features["ingest.pdf"]).toEqual({ enabled: false, in_plan: true, available: true });
    const reset = await patchOk(t.key, { features: { "chat.streaming": null, "ingest.pdf": null } });
    expect(reset.features).toEqual(ALL_ON);
    expect((await configOf(t)).overrides.owner_features ?? {}).toEqual({});
    expect(await patchOk(t.key, { features: null })).toMatchObject({ features: ALL_ON });
    expect((await configOf(t)).overrides).toEqual({});
  });

  it("changes what chat does: streaming refused while switched off, and works again when switched on", async () => {
    const off = await patchOk(a.key, { features: { "chat.streaming": false } });
    expect(off.features["chat.streaming"]).toEqual({ enabled: false, in_plan: true, available: true });
    await expectError(await chat(a, question("How long do I have to request a refund?"), true), 403, "feature_disabled");
    // Answers without streaming are not affected.
    expect((await chat(a, question("How long do I have to request a refund?"))).status).toBe(200);

    await patchOk(a.key, { features: { "chat.streaming": true } });
    const res = await chat(a, question("How long do I have to request a refund?"), true);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = parseSse(await res.text());
    expect(events.at(-1)).toMatchObject({ event: "done", data: { mode: "llm", no_answer: false } });
    await patchOk(a.key, { features: { "chat.streaming": null } });
  });

  it("changes what chat does: persona and answer style reach the prompt, chat.llm off answers extractively, retrieval_k bounds retrieval", async () => {
    const persona = `You are the refund desk of canary-${run}.`;
    await patchOk(a.key, { persona, answer_style: "bullet_points" });
    const styled = await readJson<ChatBody>(chat(a, question("How long do I have to request a refund?")));
    expect(styled.status, styled.text).toBe(200);
    expect(styled.body.mode).toBe("llm");
    const system = systemPromptOf(completions().at(-1)!);
    expect(system.startsWith(persona)).toBe(true);
    expect(system).toContain("Answer as a short bulleted list.");

    await patchOk(a.key, { persona: null, answer_style: null });
    expect((await chat(a, question("How long do I have to request a refund?"))).status).toBe(200);
    const plain = systemPromptOf(completions().at(-1)!);
    expect(plain).not.toContain(persona);
    expect(plain).not.toContain("Answer as a short bulleted list.");

    // chat.llm off: an extractive answer, and the provider is not called.
    await patchOk(a.key, { features: { "chat.llm": false } });
    const calls = completions().length;
    const extractive = await readJson<ChatBody>(chat(a, question("How long do I have to request a refund?")));
    expect(extractive.status, extractive.text).toBe(200);
    expect(extractive.body.mode).toBe("extractive");
    expect(completions()).toHaveLength(calls);
    await patchOk(a.key, { features: { "chat.llm": true } });
    expect((await readJson<ChatBody>(chat(a, question("How long do I have to request a refund?")))).body.mode).toBe("llm");
    expect(completions()).toHaveLength(calls + 1);

    // retrieval_k: the run record's retrieval step shows the k used, and no more hits than it.
    const retrievalOf = async (res: Response) => {
      const answer = await readJson<ChatBody>(res);
      expect(answer.status, answer.text).toBe(200);
      const record = await readJson<RunJson>(fence.request("GET", `/v1/runs/${encodeURIComponent(answer.body.request_id)}`, { key: a.key }));
      expect(record.status, record.text).toBe(200);
      return record.body.steps.find((s) => s.name === "retrieval")!.detail as { k: number; hits: unknown[] };
    };
    await patchOk(a.key, { retrieval_k: 1 });
    const narrow = await retrievalOf(await chat(a, question("When is a refund processed and can gift cards be refunded?")));
    expect(narrow.k).toBe(1);
    expect(narrow.hits.length).toBeLessThanOrEqual(1);
    await patchOk(a.key, { retrieval_k: null, features: { "chat.llm": null } });
    const wide = await retrievalOf(await chat(a, question("When is a refund processed and can gift cards be refunded?")));
    expect(wide.k).not.toBe(1);
    expect(wide.hits.length).toBeGreaterThan(1);
    // Every setting back to its default (a merge patch may leave an empty `owner_features` behind).
    const { owner_features: leftFlags, ...left } = (await configOf(a)).overrides;
    expect(left).toEqual({});
    expect(leftFlags ?? {}).toEqual({});
  });

  it("refuses every platform field with 403 beyond_plan naming it, and changes nothing", async () => {
    const t = await tenant("settings-beyond");
    await patchOk(t.key, { persona: "Before the attempts." });
    const before = await snapshot(t);
    for (const [field, value] of PLATFORM_FIELDS) {
      for (const body of [{ [field]: value }, { [field]: value, persona: "Smuggled along." }, { [field]: null }]) {
        const res = await fence.request("PATCH", "/v1/settings", { key: t.key, json: body });
        const error = (await expectError(res, 403, "beyond_plan")) as ErrorBodyWith<{ field: string }>;
        expect(error.error.details.field, JSON.stringify(body)).toBe(field);
      }
    }
    expect(await snapshot(t)).toEqual(before);
    expect(before.config.plan).toBe("enterprise");
  });

  it("lets the owner switch on only what the plan includes, unless the admin switched it on", async () => {
    const put = await readJson<PlanJson>(
      fence.admin("PUT", `/plans/${NO_LLM_PLAN}`, { tokens_per_day: null, tokens_per_month: null, spend_per_month_micros: null, features: { "chat.llm": false } }),
    );
    expect(put.status, put.text).toBe(201);
    const t = await tenant("settings-plan");
    await fence.upload(t, { title: "Refund policy", text: "Customers can request a refund within 30 days of purchase." });
    expect((await adminPatch(t, { plan: NO_LLM_PLAN })).plan).toBe(NO_LLM_PLAN);

    const view = (await settingsOf(t.key)).body;
    expect(view.plan).toBe(NO_LLM_PLAN);
    expect(view.features).toEqual({ ...ALL_ON, "chat.llm": { enabled: false, in_plan: false, available: false } });
    expect((await readJson<ChatBody>(chat(t, question("How long do I have to request a refund?")))).body.mode).toBe("extractive");

    // On: beyond the plan, nothing changed, nothing audited.
    const before = await snapshot(t);
    for (const body of [{ features: { "chat.llm": true } }, { persona: "Smuggled along.", features: { "chat.streaming": false, "chat.llm": true } }]) {
      const res = await fence.request("PATCH", "/v1/settings", { key: t.key, json: body });
      const error = (await expectError(res, 403, "beyond_plan")) as ErrorBodyWith<{ field: string; plan: string }>;
      expect(error.error.details).toEqual({ field: "features.chat.llm", plan: NO_LLM_PLAN });
    }
    expect(await snapshot(t)).toEqual(before);

    // Off (and back to the plan's value) is always allowed.
    const off = await patchOk(t.key, { features: { "chat.llm": false } });
    expect(off.features["chat.llm"]).toEqual({ enabled: false, in_plan: false, available: false });
    expect(await patchOk(t.key, { features: { "chat.llm": null } })).toMatchObject({ features: { "chat.llm": { enabled: false, in_plan: false, available: false } } });

    // The admin switches it on for this tenant: the owner may now switch it off and on again.
    await adminPatch(t, { features: { "chat.llm": true } });
    expect((await settingsOf(t.key)).body.features["chat.llm"]).toEqual({ enabled: true, in_plan: false, available: true });
    expect((await readJson<ChatBody>(chat(t, question("How long do I have to request a refund?")))).body.mode).toBe("llm");
    expect((await patchOk(t.key, { features: { "chat.llm": false } })).features["chat.llm"]).toEqual({ enabled: false, in_plan: false, available: true });
    const kept = await patchOk(t.key, { persona: "Still allowed.", features: { "chat.llm": true } });
    expect(kept.features["chat.llm"]).toEqual({ enabled: true, in_plan: false, available: true });
    // The owner's flags are its own: the admin's grant stays as the admin set it.
    expect((await configOf(t)).overrides).toEqual({ persona: "Still allowed.", features: { "chat.llm": true }, owner_features: { "chat.llm": true } });

    // The admin switches it off: off whatever the owner chose, and the owner cannot switch it on.
    await adminPatch(t, { features: { "chat.llm": false } });
    expect((await settingsOf(t.key)).body.features["chat.llm"]).toEqual({ enabled: false, in_plan: false, available: false });
    expect((await readJson<ChatBody>(chat(t, question("How long do I have to request a refund?")))).body.mode).toBe("extractive");
    await expectError(await fence.request("PATCH", "/v1/settings", { key: t.key, json: { features: { "chat.llm": true } } }), 403, "beyond_plan");
    expect((await configOf(t)).overrides.features).toEqual({ "chat.llm": false });
  });

  it("keeps a flag the admin switched off off, even one the plan includes", async () => {
    const t = await tenant("settings-admin-off");
    await adminPatch(t, { features: { "chat.streaming": false } });
    expect((await settingsOf(t.key)).body.features["chat.streaming"]).toEqual({ enabled: false, in_plan: true, available: false });
    const before = await snapshot(t);
    const refused = (await expectError(
      await fence.request("PATCH", "/v1/settings", { key: t.key, json: { features: { "chat.streaming": true } } }),
      403,
      "beyond_plan",
    )) as ErrorBodyWith<{ field: string }>;
    expect(refused.error.details.field).toBe("features.chat.streaming");
    expect(await snapshot(t)).toEqual(before);
    // Switching it off as well is allowed (and changes nothing the tenant sees).
    expect((await patchOk(t.key, { features: { "chat.streaming": false } })).features["chat.streaming"]).toEqual({ enabled: false, in_plan: true, available: false });
    await expectError(await chat(t, question("How long do I have to request a refund?"), true), 403, "feature_disabled");
  });

  it("refuses unknown fields and bad values with 400 validation_error, and changes nothing", async () => {
    const t = await tenant("settings-bad");
    await patchOk(t.key, { persona: "Kept.", answer_style: "detailed", retrieval_k: 4, features: { "ingest.pdf": false } });
    const before = await snapshot(t);
    const bad: [string, unknown][] = [
      ["an unknown field", { colour: "blue" }],
      ["an unknown field beside a good one", { persona: "Changed?", colour: "blue" }],
      ["retrieval_k 0", { retrieval_k: 0 }],
      ["retrieval_k 51", { retrieval_k: 51 }],
      ["retrieval_k 2.5", { retrieval_k: 2.5 }],
      ["retrieval_k as a string", { retrieval_k: "5" }],
      ["an unknown answer style", { answer_style: "poetic" }],
      ["a persona over 2000 characters", { persona: "x".repeat(2001) }],
      ["a persona that is not a string", { persona: 42 }],
      ["an unknown flag", { features: { "chat.telepathy": true } }],
      ["an unknown flag beside a good one", { features: { "chat.streaming": false, "chat.telepathy": false } }],
      ["a flag that is not a boolean", { features: { "chat.streaming": "off" } }],
      ["features that are not an object", { features: true }],
      ["an array body", [{ persona: "Changed?" }]],
      ["a string body", "persona"],
      ["a null body", null],
    ];
    for (const [what, body] of bad) {
      const res = await fence.request("PATCH", "/v1/settings", { key: t.key, body: JSON.stringify(body), headers: { "content-type": "application/json" } });
      const text = await res.clone().text();
      expect(res.status, `${what}: ${text}`).toBe(400);
      await expectError(res, 400, "validation_error");
    }
    for (const body of ["{not json", ""]) {
      const res = await fence.request("PATCH", "/v1/settings", { key: t.key, body, headers: { "content-type": "application/json" } });
      expect(res.status, `body ${JSON.stringify(body)}`).toBe(400);
    }
    expect(await snapshot(t)).toEqual(before);
  });

  it("refuses query, ingest and read keys on both routes with 403 insufficient_scope", async () => {
    const t = await tenant("settings-scopes");
    await patchOk(t.key, { persona: "Owner's choice." });
    const before = await snapshot(t);
    for (const scopes of [["query"], ["ingest"], ["read"], ["query", "ingest", "read"]]) {
      const key = await keyWith(t, scopes);
      for (const [method, json] of [["GET", undefined], ["PATCH", { persona: "Not yours to set." }], ["PATCH", { features: { "chat.llm": false } }]] as const) {
        const res = await fence.request(method, "/v1/settings", { key: key.key, ...(json ? { json } : {}) });
        const error = (await expectError(res, 403, "insufficient_scope")) as ErrorBodyWith<{ required_scope: string }>;
        expect(error.error.details, `${scopes.join("+")} ${method}`).toEqual({ required_scope: "owner" });
      }
    }
    // No key, or an unknown one: 401.
    await expectError(await fence.request("GET", "/v1/settings"), 401, "unauthorized");
    await expectError(await fence.request("PATCH", "/v1/settings", { key: `fence_${randomBytes(16).toString("hex")}`, json: { persona: "x" } }), 401, "unauthorized");
    // The admin key is not a tenant key.
    await expectError(await fence.request("GET", "/v1/settings", { key: ADMIN_KEY }), 401, "unauthorized");
    expect(await snapshot(t)).toEqual(before);
    // An owner key made later works.
    const owner = await keyWith(t, ["owner"], "second owner");
    expect((await settingsOf(owner.key)).body.persona).toBe("Owner's choice.");
  });

  it("keeps each tenant's settings its own: B never sees nor changes A's", async () => {
    const x = await tenant("settings-iso-a");
    const y = await tenant("settings-iso-b");
    const canary = `Persona canary ${run} of A.`;
    await patchOk(x.key, { persona: canary, answer_style: "detailed", retrieval_k: 3, features: { "ingest.pdf": false } });
    const before = await snapshot(x);

    const seenByB = await settingsOf(y.key);
    expect(seenByB.body).toEqual({ plan: "enterprise", persona: null, answer_style: null, retrieval_k: null, features: ALL_ON, updated_at: null });
    const patchedByB = await patchSettings(y.key, { persona: "B's own.", answer_style: "concise", retrieval_k: 9, features: { "chat.streaming": false } });
    expect(patchedByB.status).toBe(200);
    expect(patchedByB.body).toMatchObject({ persona: "B's own.", answer_style: "concise", retrieval_k: 9 });
    const nulledByB = await patchSettings(y.key, { persona: null, answer_style: null, retrieval_k: null, features: null });
    expect(nulledByB.status).toBe(200);
    const auditOfB = await readJson<AuditEventListJson>(fence.request("GET", "/v1/audit?limit=100", { key: y.key }));
    for (const text of [seenByB.text, patchedByB.text, nulledByB.text, auditOfB.text]) {
      expect(text).not.toContain(canary);
      expect(text).not.toContain(x.id);
    }
    expect(await snapshot(x)).toEqual(before);
    expect((await settingsOf(x.key)).body).toMatchObject({ persona: canary, answer_style: "detailed", retrieval_k: 3 });
    expect((await configOf(y)).overrides).toEqual({});
    // A's trail has only A's own events.
    const auditOfA = await settingsEvents(x);
    expect(auditOfA).toHaveLength(1);
    expect(JSON.stringify(auditOfA)).not.toContain("B's own.");

    // Also the long-lived pair: B's owner reads B's settings only.
    expect((await settingsOf(b.key)).body.plan).toBe("enterprise");
    expect((await settingsOf(b.key)).text).not.toContain(canary);
  });

  it("audits each change as settings.patched with the acting key and the settings before and after", async () => {
    const t = await tenant("settings-audit");
    const second = await keyWith(t, ["owner"], "second owner");
    const first = await fence.request("PATCH", "/v1/settings", { key: t.key, json: { persona: "First persona." } });
    expect(first.status).toBe(200);
    const firstBody = (await first.json()) as SettingsJson;
    const secondRes = await fence.request("PATCH", "/v1/settings", { key: second.key, json: { persona: "Second persona.", features: { "chat.streaming": false } } });
    expect(secondRes.status).toBe(200);
    const secondBody = (await secondRes.json()) as SettingsJson;

    const events = await settingsEvents(t);
    expect(events).toHaveLength(2);
    const [newest, oldest] = events;
    expect(oldest).toMatchObject({
      action: "settings.patched",
      actor: "key",
      actor_key_id: t.keyId,
      target_id: t.id,
      request_id: first.headers.get("x-request-id"),
      before: { plan: "enterprise", persona: null, updated_at: null, features: ALL_ON },
      after: { persona: "First persona." },
    });
    expect(oldest!.after).toEqual(firstBody);
    expect(newest).toMatchObject({
      action: "settings.patched",
      actor: "key",
      actor_key_id: second.id,
      target_id: t.id,
      request_id: secondRes.headers.get("x-request-id"),
      before: { persona: "First persona." },
      after: { persona: "Second persona.", features: { "chat.streaming": { enabled: false, in_plan: true, available: true } } },
    });
    expect(newest!.before).toEqual(firstBody);
    expect(newest!.after).toEqual(secondBody);
    // Reading the settings audits nothing.
    await settingsOf(t.key);
    expect(await settingsEvents(t)).toHaveLength(2);
    // The admin sees the same events in the platform trail.
    const platform = await readJson<AdminAuditEventListJson>(fence.admin("GET", `/audit?tenant_id=${t.id}&action=settings.patched`));
    expect(platform.status, platform.text).toBe(200);
    expect(platform.body.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
  });

  it("keeps every field of concurrent patches, the owner's and the admin's (no lost merge)", async () => {
    const t = await tenant("settings-race");
    const until = new Date(Date.now() + 3_600_000).toISOString();
    for (const round of [0, 1, 2]) {
      const on = round % 2 === 0;
      const owner: Record<string, unknown>[] = [
        { persona: `Persona of round ${round}.` },
        { answer_style: on ? "bullet_points" : "concise" },
        { retrieval_k: 10 + round },
        { features: { "chat.streaming": !on } },
        { features: { "chat.llm": !on } },
        { features: { "ingest.pdf": !on } },
        { persona: `Persona of round ${round}.`, features: { "chat.streaming": !on } },
        { retrieval_k: 10 + round, answer_style: on ? "bullet_points" : "concise" },
      ];
      const admin: Record<string, unknown>[] = [{ model_tier: on ? "fallback" : "preferred" }, { debug_log_prompts_until: on ? until : null }];
      const replies = await Promise.all([
        ...owner.map((body) => fence.request("PATCH", "/v1/settings", { key: t.key, json: body })),
        ...admin.map((body) => fence.admin("PATCH", `/tenants/${t.id}/config`, body)),
      ]);
      const statuses = await Promise.all(replies.map(async (r) => `${r.status} ${r.status === 200 ? "" : await r.text()}`));
      expect(statuses, `round ${round}`).toEqual(replies.map(() => "200 "));
      const overrides = (await configOf(t)).overrides;
      expect(overrides).toEqual({
        persona: `Persona of round ${round}.`,
        answer_style: on ? "bullet_points" : "concise",
        retrieval_k: 10 + round,
        owner_features: { "chat.streaming": !on, "chat.llm": !on, "ingest.pdf": !on },
        model_tier: on ? "fallback" : "preferred",
        ...(on ? { debug_log_prompts_until: expect.any(String) } : {}),
      });
      if (on) expect(Date.parse(overrides.debug_log_prompts_until!)).toBe(Date.parse(until));
      const seen = (await settingsOf(t.key)).body;
      expect(seen).toMatchObject({ persona: `Persona of round ${round}.`, answer_style: on ? "bullet_points" : "concise", retrieval_k: 10 + round });
      for (const flag of FLAGS) expect(seen.features[flag]).toEqual({ enabled: !on, in_plan: true, available: true });
    }
    expect(await settingsEvents(t)).toHaveLength(3 * 8);
  });
});
