import { EXTRACTIVE_ONLY, expectStatus, type Attack, type AttackContext } from "../attack.js";
import { AttackerHttp, type Party, type Reply } from "../exchange.js";
import { expectLikeMissing } from "./jobs.js";
import type {
  AdminAuditEventListJson,
  ApiKeyJson,
  ErrorBodyWith,
  IssuedKeyJson,
  SettingsJson,
  TenantConfigJson,
} from "../../../test/support/api-types.js";

/**
 * The owner's self-service settings and key limits (issue 18): an `owner` key sets its tenant's
 * persona, answer style, retrieval k and feature flags (PATCH /v1/settings) — a flag on only when
 * the plan includes it — and edits its tenant's keys' names and limits (PATCH /v1/keys/:id), never
 * above its own limits (400) nor the plan's (403 `beyond_plan`). The plan, its budgets and limits,
 * the model tier and prompt logging are the platform's: 403 `beyond_plan`, nothing changed.
 *
 * Attacks 1 and 5 depend on no lock and are `blocked` in every mode, mode 4 included: the
 * platform's fields are refused by name before any query, and a key's bound (its own limit) is
 * checked before the key it names is looked up; what they check is read by the admin, or by B's
 * owner outside the recorded traffic. Attack 2 (a flag B's plan leaves out) is refused on B's plan
 * as read inside B's transaction, through the locks: with every lock off that read may return
 * another tenant's plan, so its outcomes hold only while a lock is on (`expectHealthy`), and as A
 * holds no needle in its settings then, it is `blocked` in mode 4 too. Attacks 3 and 4 are data
 * attacks that reach the locks, so with every lock off they must leak: B's audit trail then holds
 * A's config.patched event with A's canary persona (and B's settings read, which takes whichever
 * tenant's row comes first, may show it too), and B's PATCH of A's key by id really changes it
 * and answers with A's key, whose description is a canary.
 *
 * Every call of the admin's (setup, ground truth, clean-up) is made outside the recorded traffic,
 * like keys.ts: the admin legitimately sees every tenant, and as a recorded party of no tenant its
 * replies naming A's canaries or B's ids would count as leaks.
 */

/** A plan of the eval's own that leaves `chat.llm` out; a fixed name, so repeated runs replace it. */
const NO_LLM_PLAN = "eval-isolation-no-llm";

type BeyondPlanJson = ErrorBodyWith<{ field?: string } | undefined>;
type ValidationJson = ErrorBodyWith<{ fields?: { field: string; message: string }[] } | undefined>;
type AdminAuditEventJson = AdminAuditEventListJson["events"][number];

/**
 * An HTTP client whose exchanges the detector never sees (setup and ground truth, not attack). It
 * needs the instance's address, known from a recorded request: when the attack has made none yet,
 * an anonymous GET /healthz (which names no tenant) is recorded first.
 */
async function unrecorded(ctx: AttackContext): Promise<AttackerHttp> {
  if (!ctx.http.exchanges[0]) await ctx.http.send(ctx.parties.anon, "GET", "/healthz");
  return new AttackerHttp(new URL(ctx.http.exchanges[0]!.request.url).origin);
}

/** An admin call outside the recorded traffic; anything but 2xx aborts the attack (setup). */
async function adminCall(http: AttackerHttp, ctx: AttackContext, method: string, path: string, json?: unknown): Promise<unknown> {
  const reply = await http.send(ctx.parties.admin, method, path, { json });
  if (reply.status >= 300) throw new Error(`setup: the admin's ${method} ${path}: ${reply.status} ${reply.body.slice(0, 200)}`);
  return reply.json;
}

function configOf(http: AttackerHttp, ctx: AttackContext, tenantId: string): Promise<TenantConfigJson> {
  return adminCall(http, ctx, "GET", `/v1/admin/tenants/${tenantId}/config`) as Promise<TenantConfigJson>;
}

/**
 * Puts a tenant back on its plan and overrides as they were (a merge patch setting every override
 * either had to its old value, or removing it), whatever the attack did to them.
 */
async function restoreConfig(http: AttackerHttp, ctx: AttackContext, was: TenantConfigJson): Promise<void> {
  const now = await configOf(http, ctx, was.tenant_id);
  const old = was.overrides as Record<string, unknown>;
  const patch: Record<string, unknown> = { plan: was.plan };
  for (const field of new Set([...Object.keys(now.overrides), ...Object.keys(old)])) patch[field] = old[field] ?? null;
  // Flags (the platform's and the owner's) merge one by one: clear them all, then set the old ones again.
  const flagMaps = ["features", "owner_features"] as const;
  for (const map of flagMaps) patch[map] = null;
  await adminCall(http, ctx, "PATCH", `/v1/admin/tenants/${was.tenant_id}/config`, patch);
  const oldFlags = Object.fromEntries(flagMaps.filter((map) => Object.keys(was.overrides[map] ?? {}).length > 0).map((map) => [map, was.overrides[map]]));
  if (Object.keys(oldFlags).length > 0) await adminCall(http, ctx, "PATCH", `/v1/admin/tenants/${was.tenant_id}/config`, oldFlags);
}

/** Audit events as the platform admin reads them (every tenant's, or one's), paged, newest first. */
async function adminEvents(http: AttackerHttp, ctx: AttackContext, query: string): Promise<AdminAuditEventJson[]> {
  const events: AdminAuditEventJson[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const body = (await adminCall(http, ctx, "GET", `/v1/admin/audit?limit=100&${query}${cursor ? `&cursor=${cursor}` : ""}`)) as AdminAuditEventListJson;
    events.push(...body.events);
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  return events;
}

/** A tenant's keys (revoked ones included) as its own owner key reads them, outside the recorded traffic. */
async function keysAsOwner(http: AttackerHttp, owner: Party): Promise<ApiKeyJson[]> {
  const reply = await http.send(owner, "GET", "/v1/keys?include_revoked=true");
  if (reply.status !== 200) throw new Error(`setup: ${owner.label} GET /v1/keys: ${reply.status} ${reply.body.slice(0, 200)}`);
  return (reply.json as { keys: ApiKeyJson[] }).keys;
}

/** What PATCH /v1/keys/:id may change, as a key shows it. */
function editable(key: ApiKeyJson | undefined): string {
  if (!key) return "missing";
  const { name, description, requests_per_minute, tokens_per_month, spend_per_month_micros, revoked_at } = key;
  return JSON.stringify({ name, description, requests_per_minute, tokens_per_month, spend_per_month_micros, revoked_at });
}

/** 403 `beyond_plan` naming exactly the refused field. */
function expectBeyondPlan(check: (ok: boolean, message: string) => void, reply: Reply, field: string, what: string): void {
  const error = (reply.json as BeyondPlanJson | undefined)?.error;
  check(
    reply.status === 403 && error?.code === "beyond_plan" && error.details?.field === field,
    `${what}: ${reply.status} ${reply.body.slice(0, 160)}, expected 403 beyond_plan (field ${field})`,
  );
}

/** 400 `validation_error` naming exactly the refused field. */
function expectInvalidField(ctx: AttackContext, reply: Reply, field: string, what: string): void {
  const error = (reply.json as ValidationJson | undefined)?.error;
  ctx.expect(
    reply.status === 400 && error?.code === "validation_error" && error.details?.fields?.some((f) => f.field === field) === true,
    `${what}: ${reply.status} ${reply.body.slice(0, 160)}, expected 400 validation_error (field ${field})`,
  );
}

const settingsEvents = (http: AttackerHttp, ctx: AttackContext) => adminEvents(http, ctx, `tenant_id=${ctx.b.id}&action=settings.patched`);

export const settingsAttacks: Attack[] = [
  {
    // Proves the platform's fields are the platform's: B's owner key PATCHing its own settings with
    // its plan, a plan budget or limit, the model tier (also clearing the admin's pin to the
    // fallback model) or prompt logging — alone, or beside a field it may set — gets 403
    // beyond_plan naming that field, and B's configuration (the admin's view: plan, overrides,
    // updated_at) and B's audit trail are unchanged: nothing of the patch was applied.
    name: "settings beyond the plan",
    path: "PATCH /v1/settings with the platform's fields",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const http = await unrecorded(ctx);
      const original = await configOf(http, ctx, ctx.b.id);
      try {
        // The admin pins B to the fallback model: the owner clearing the pin would be a raise too.
        await adminCall(http, ctx, "PATCH", `/v1/admin/tenants/${ctx.b.id}/config`, { model_tier: "fallback" });
        const before = await configOf(http, ctx, ctx.b.id);
        const eventsBefore = await settingsEvents(http, ctx);
        const inAnHour = new Date(Date.now() + 60 * 60 * 1000).toISOString();
        const attempts: [string, Record<string, unknown>][] = [
          ["plan", { plan: "enterprise" }],
          ["plan", { plan: NO_LLM_PLAN }],
          ["tokens_per_month", { tokens_per_month: 400_000_000 }],
          ["tokens_per_month", { tokens_per_month: null }],
          ["spend_per_month_micros", { spend_per_month_micros: 2_000_000_000 }],
          ["spend_per_month_micros", { spend_per_month_micros: null }],
          ["requests_per_minute", { requests_per_minute: 3000 }],
          ["max_concurrency", { max_concurrency: 32 }],
          ["tokens_per_day", { tokens_per_day: null }],
          ["tokens_per_minute", { tokens_per_minute: 3_000_000 }],
          ["scheduling_weight", { scheduling_weight: 1000 }],
          ["preferred_model", { preferred_model: "gpt-4o" }],
          ["model_tier", { model_tier: "preferred" }],
          ["model_tier", { model_tier: null }],
          ["debug_log_prompts_until", { debug_log_prompts_until: inAnHour }],
          // Beside fields the owner may set: the whole patch is refused, the persona not applied.
          ["tokens_per_month", { persona: "A persona slipped in beside a budget.", tokens_per_month: null }],
          ["plan", { answer_style: "detailed", retrieval_k: 20, plan: "enterprise" }],
          ["debug_log_prompts_until", { retrieval_k: 3, debug_log_prompts_until: inAnHour }],
        ];
        for (const [field, body] of attempts) {
          const reply = await ctx.http.send(ctx.parties.b, "PATCH", "/v1/settings", { json: body });
          expectBeyondPlan(ctx.expect, reply, field, `B's owner PATCH /v1/settings ${JSON.stringify(body).slice(0, 80)}`);
        }
        const after = await configOf(http, ctx, ctx.b.id);
        ctx.expect(JSON.stringify(after) === JSON.stringify(before), `B's configuration changed: ${JSON.stringify(before)} → ${JSON.stringify(after)}`);
        const eventsAfter = await settingsEvents(http, ctx);
        ctx.expect(eventsAfter.length === eventsBefore.length, `B's audit trail gained ${eventsAfter.length - eventsBefore.length} settings.patched events from refused patches`);
      } finally {
        await restoreConfig(http, ctx, original);
      }
    },
  },
  {
    // Proves a flag goes on only when the plan includes it: B, moved by the admin onto a plan of the
    // eval's that leaves `chat.llm` out, switching it on (alone, beside a flag its plan includes,
    // beside its persona) gets 403 beyond_plan naming `features.chat.llm`, and B's configuration is
    // unchanged; B's settings say the flag is off and not in the plan. The refusal is not "flags
    // are refused": B switches `chat.streaming`, which its plan includes, off and back (200).
    name: "a flag B's plan leaves out",
    path: "PATCH /v1/settings {features}",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const http = await unrecorded(ctx);
      const original = await configOf(http, ctx, ctx.b.id);
      // B's plan is read inside B's transaction, through the locks: with every lock off that read
      // may be another tenant's plan, so these outcomes hold only while a lock is on.
      const check = ctx.expectHealthy;
      try {
        await adminCall(http, ctx, "PUT", `/v1/admin/plans/${NO_LLM_PLAN}`, {
          tokens_per_day: null,
          tokens_per_month: null,
          spend_per_month_micros: null,
          features: { "chat.llm": false },
        });
        await adminCall(http, ctx, "PATCH", `/v1/admin/tenants/${ctx.b.id}/config`, { plan: NO_LLM_PLAN });
        const before = await configOf(http, ctx, ctx.b.id);

        const shown = await ctx.http.send(ctx.parties.b, "GET", "/v1/settings");
        const llm = (shown.json as Partial<SettingsJson> | undefined)?.features?.["chat.llm"];
        check(
          shown.status === 200 && llm?.enabled === false && llm.in_plan === false,
          `B's GET /v1/settings on ${NO_LLM_PLAN}: ${shown.status}, chat.llm ${JSON.stringify(llm)}, expected off and not in the plan`,
        );
        for (const body of [
          { features: { "chat.llm": true } },
          { features: { "chat.streaming": true, "chat.llm": true } },
          { persona: "A persona slipped in beside a flag.", features: { "chat.llm": true } },
        ]) {
          const reply = await ctx.http.send(ctx.parties.b, "PATCH", "/v1/settings", { json: body });
          expectBeyondPlan(check, reply, "features.chat.llm", `B's owner PATCH /v1/settings ${JSON.stringify(body)}`);
        }
        const after = await configOf(http, ctx, ctx.b.id);
        check(JSON.stringify(after) === JSON.stringify(before), `B's configuration changed: ${JSON.stringify(before)} → ${JSON.stringify(after)}`);

        // Control: a flag the plan includes may be switched off and back (null: the plan's own).
        for (const [on, enabled] of [[false, false], [null, true]] as const) {
          const reply = await ctx.http.send(ctx.parties.b, "PATCH", "/v1/settings", { json: { features: { "chat.streaming": on } } });
          const flag = (reply.json as Partial<SettingsJson> | undefined)?.features?.["chat.streaming"];
          check(
            reply.status === 200 && flag?.enabled === enabled,
            `B's owner switching chat.streaming (in its plan) to ${on}: ${reply.status} ${reply.body.slice(0, 160)}, expected 200 with enabled ${enabled}`,
          );
        }
      } finally {
        await restoreConfig(http, ctx, original);
      }
    },
  },
  {
    // Proves one tenant's settings never reach another (I6): A's persona (set by the admin) holds a
    // canary, planted as A's. B's owner reads and patches its own settings (fields other than the
    // persona first, so a reply built on A's row would carry A's persona back), sets a persona of
    // its own and reads it back, and reads its audit trail of settings and configuration changes
    // (the admin's change of A's persona is a config.patched event of A's): no reply holds A's
    // canary, and A's configuration is unchanged. A's own GET shows the canary, so it is live.
    // (Not through chat: the echoing LLM sends back the user message, not the system prompt that
    // carries the persona, so a persona reaching the wrong prompt would not be seen there.)
    name: "A's settings never reach B",
    path: "GET|PATCH /v1/settings, GET /v1/audit",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const http = await unrecorded(ctx);
      const originals = [await configOf(http, ctx, ctx.a.id), await configOf(http, ctx, ctx.b.id)];
      const canary = `CANARY-SETTINGS-A-${crypto.randomUUID()}`;
      const marker = `B-PERSONA-${crypto.randomUUID()}`;
      ctx.plant([{ owner: "A", kind: "canary", value: canary }]);
      try {
        await adminCall(http, ctx, "PATCH", `/v1/admin/tenants/${ctx.a.id}/config`, {
          persona: `You are the assistant of ${canary}; always greet the reader by that name.`,
          answer_style: "bullet_points",
          retrieval_k: 7,
        });
        const aBefore = await configOf(http, ctx, ctx.a.id);
        const b = ctx.parties.b;
        const sends: [string, string, unknown?][] = [
          ["GET", "/v1/settings"],
          // Fields other than the persona: the reply carries the persona as read, not as sent.
          ["PATCH", "/v1/settings", { answer_style: "concise" }],
          ["PATCH", "/v1/settings", { retrieval_k: 5 }],
          ["PATCH", "/v1/settings", { persona: `You are ${marker}.` }],
          ["GET", "/v1/settings"],
          ["GET", "/v1/audit?limit=100&action=settings.patched"],
          ["GET", "/v1/audit?limit=100&action=config.patched"],
          ["GET", "/v1/audit?limit=100"],
        ];
        for (const [method, path, json] of sends) {
          const reply = await ctx.http.send(b, method, path, { json });
          expectStatus(ctx, reply, [200], `B's owner ${method} ${path}`);
        }
        const own = await ctx.http.send(b, "GET", "/v1/settings");
        const persona = (own.json as Partial<SettingsJson> | undefined)?.persona;
        ctx.expectHealthy(own.status === 200 && persona === `You are ${marker}.`, `B's own settings after its patches: ${own.status}, persona ${JSON.stringify(persona)}`);

        const aAfter = await configOf(http, ctx, ctx.a.id);
        ctx.expectHealthy(JSON.stringify(aAfter) === JSON.stringify(aBefore), `A's configuration changed while B patched its own: ${JSON.stringify(aBefore)} → ${JSON.stringify(aAfter)}`);
        // A's canary is live: A's own settings show it (A reading its own data is no leak).
        const aOwn = await ctx.http.send(ctx.parties.a, "GET", "/v1/settings");
        ctx.expectHealthy(aOwn.body.includes(canary), `A's own GET /v1/settings lacks A's canary persona (${aOwn.status}): the canary is not where B could take it from`);
      } finally {
        for (const config of originals) await restoreConfig(http, ctx, config);
      }
    },
  },
  {
    // Proves an owner key edits its own tenant's keys only (I6): B's owner PATCHing A's keys by id
    // — a spare key of A's with limits of its own and a canary description (issued for the attack,
    // planted as A's needles), A's own key, A's revoked key, and the spare's id in upper case —
    // raising their limits, lifting them (null), renaming them and clearing the description,
    // answers exactly like a made-up key id with the same body; and A's keys are unchanged: A's
    // owner lists them as they were, and the admin's trail holds no key.updated event of them.
    name: "B's owner on A's key by id (PATCH)",
    path: "PATCH /v1/keys/:id",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const b = ctx.parties.b;
      const http = await unrecorded(ctx);
      const canary = `CANARY-KEY-A-${crypto.randomUUID()}`;
      const spare = (await adminCall(http, ctx, "POST", `/v1/admin/tenants/${ctx.a.id}/keys`, {
        name: "eval-settings-spare",
        description: `Nightly export job ${canary}`,
        requests_per_minute: 5,
        tokens_per_month: 1000,
        spend_per_month_micros: 1000,
      })) as IssuedKeyJson;
      ctx.plant([
        { owner: "A", kind: "key-id", value: spare.id },
        { owner: "A", kind: "api-key", value: spare.key },
        { owner: "A", kind: "canary", value: canary },
      ]);
      try {
        const aParty = ctx.parties.a;
        const keysBefore = await keysAsOwner(http, aParty);
        const bodies = {
          raise: { requests_per_minute: 50, tokens_per_month: 100_000, spend_per_month_micros: 100_000 },
          lift: { requests_per_minute: null, tokens_per_month: null, spend_per_month_micros: null },
          rename: { name: "eval-settings-hijacked", description: "Renamed by tenant B." },
          clear: { description: null },
        };
        type Body = keyof typeof bodies;
        const missing = new Map<Body, Reply>();
        for (const [label, body] of Object.entries(bodies) as [Body, unknown][]) {
          const reply = await ctx.http.send(b, "PATCH", `/v1/keys/${crypto.randomUUID()}`, { json: body });
          ctx.expect(reply.status === 404, `B's owner PATCH a random key id (${label}): status ${reply.status}, expected 404`);
          missing.set(label, reply);
        }
        const targets: { label: string; id: string; bodies: Body[] }[] = [
          // Limits first: were the PATCH to go through, its reply would be A's key, canary included.
          { label: "A's spare key", id: spare.id, bodies: ["raise", "lift", "rename", "clear"] },
          { label: "A's spare key (id in upper case)", id: spare.id.toUpperCase(), bodies: ["raise", "rename"] },
          // A's own key: renamed and its (absent) limits lifted, so with every lock off it still works for later attacks.
          { label: "A's own key", id: ctx.a.keyId, bodies: ["lift", "rename"] },
          { label: "A's revoked key", id: ctx.a.revokedKey!.id, bodies: ["raise", "rename"] },
        ];
        for (const target of targets) {
          for (const label of target.bodies) {
            const reply = await ctx.http.send(b, "PATCH", `/v1/keys/${target.id}`, { json: bodies[label] });
            expectLikeMissing(ctx, reply, missing.get(label)!, `B's owner PATCH ${target.label} (${label})`);
          }
        }

        // Ground truth: A's keys as A's owner lists them, and the admin's record of key changes.
        const keysAfter = await keysAsOwner(http, aParty);
        for (const id of [spare.id, ctx.a.keyId, ctx.a.revokedKey!.id]) {
          const [was, now] = [keysBefore.find((k) => k.id === id), keysAfter.find((k) => k.id === id)];
          ctx.expectHealthy(editable(now) === editable(was), `A's key ${id} changed: ${editable(was)} → ${editable(now)}`);
        }
        const aKeys = new Set([spare.id, ctx.a.keyId, ctx.a.revokedKey!.id]);
        const updates = (await adminEvents(http, ctx, "action=key.updated")).filter((e) => e.target_id && aKeys.has(e.target_id));
        ctx.expectHealthy(updates.length === 0, `the admin's trail holds ${updates.length} key.updated events of A's keys (by tenant ${updates[0]?.tenant_id})`);
      } finally {
        await adminCall(http, ctx, "DELETE", `/v1/admin/tenants/${ctx.a.id}/keys/${spare.id}`);
      }
    },
  },
  {
    // Proves no key raises itself: a key B's owner makes with 10 requests/min PATCHing itself to
    // 1,000, to 11 or to none (null), alone or beside a rename, gets 400 validation_error naming
    // requests_per_minute, as does raising its maker's key or making a key above its own limit;
    // its limit stays 10 (B's owner lists it, outside the recorded traffic). The 400 is the bound,
    // not "keys cannot PATCH": the same key renaming itself at its own limit answers 200.
    name: "a key raising itself",
    path: "PATCH /v1/keys/:id (own), POST /v1/keys",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const made = await ctx.http.send(ctx.parties.b, "POST", "/v1/keys", { json: { name: "eval-settings-limited", requests_per_minute: 10 } });
      if (made.status !== 201) throw new Error(`setup: B's owner POST /v1/keys: ${made.status} ${made.body.slice(0, 200)}`);
      const issued = made.json as IssuedKeyJson;
      const http = await unrecorded(ctx);
      try {
        ctx.expect(issued.requests_per_minute === 10, `the key was made with requests_per_minute ${issued.requests_per_minute}, expected 10`);
        const limited: Party = { label: "B's 10/min key", tenant: "B", key: issued.key };
        const self = `/v1/keys/${issued.id}`;
        for (const body of [
          { requests_per_minute: 1000 },
          { requests_per_minute: 11 },
          { requests_per_minute: null },
          { name: "eval-settings-unlimited", requests_per_minute: null },
          { requests_per_minute: 1000, tokens_per_month: 10 },
        ]) {
          const reply = await ctx.http.send(limited, "PATCH", self, { json: body });
          expectInvalidField(ctx, reply, "requests_per_minute", `${limited.label} PATCH itself ${JSON.stringify(body)}`);
        }
        // Nor through another key: its maker's (unlimited) key raised, or a new key above its limit.
        const maker = await ctx.http.send(limited, "PATCH", `/v1/keys/${ctx.b.keyId}`, { json: { requests_per_minute: 1000 } });
        expectInvalidField(ctx, maker, "requests_per_minute", `${limited.label} PATCH B's owner key to 1000/min`);
        const child = await ctx.http.send(limited, "POST", "/v1/keys", { json: { name: "eval-settings-child", requests_per_minute: 1000 } });
        expectInvalidField(ctx, child, "requests_per_minute", `${limited.label} POST /v1/keys at 1000/min`);

        const keys = await keysAsOwner(http, ctx.parties.b);
        const [now, makerNow] = [keys.find((k) => k.id === issued.id), keys.find((k) => k.id === ctx.b.keyId)];
        ctx.expect(now?.requests_per_minute === 10 && now.name === "eval-settings-limited", `the limited key is now ${editable(now)}, expected 10/min as made`);
        ctx.expect(makerNow?.requests_per_minute === null, `B's owner key now has requests_per_minute ${makerNow?.requests_per_minute}, expected none`);
        ctx.expect(!keys.some((k) => k.name === "eval-settings-child"), "the limited key made a key above its limit");

        // Control: at its own limit, the same key may PATCH itself.
        const control = await ctx.http.send(limited, "PATCH", self, { json: { name: "eval-settings-limited-renamed", requests_per_minute: 10 } });
        const body = control.json as Partial<ApiKeyJson> | undefined;
        ctx.expect(
          control.status === 200 && body?.requests_per_minute === 10 && body.name === "eval-settings-limited-renamed",
          `${limited.label} renaming itself at its own limit: ${control.status} ${control.body.slice(0, 160)}, expected 200`,
        );
      } finally {
        await adminCall(http, ctx, "DELETE", `/v1/admin/tenants/${ctx.b.id}/keys/${issued.id}`);
      }
    },
  },
];
