import { EXTRACTIVE_ONLY, expectStatus, search, type Attack, type AttackContext } from "../attack.js";
import type { Party, Reply } from "../exchange.js";
import type { SeededTenant } from "../seed.js";
import type { ErrorBodyWith, TenantConfigJson } from "../../../test/support/api-types.js";

/**
 * Admission (performance isolation): per-tenant requests/min and in-flight limits must count per
 * tenant — A at its limit must not refuse B, B's traffic must not use up or reset A's window —
 * and a 429 must speak only of the refused tenant's own numbers. The attacks move A and B onto
 * tiny plans through the admin API (as an operator would) and back to their plans afterwards.
 * Every 429 is scanned like any reply, so the other tenant's id, name or keys in one is a leak.
 */

/** Fixed names, so repeated runs on a shared database replace these plans instead of adding more. */
const RPM_PLAN = "eval-isolation-rpm-3";
const OWN_RPM_PLAN = "eval-isolation-rpm-5";
const CONCURRENCY_PLAN = "eval-isolation-concurrency-1";

type RateLimitedJson = ErrorBodyWith<{ reason?: string; retry_after_seconds?: number } | undefined>;

/** Admin setup through the recorded client (its replies are scanned too); a failure aborts the attack. */
export async function admin(ctx: AttackContext, method: string, path: string, json?: unknown): Promise<unknown> {
  const reply = await ctx.http.send(ctx.parties.admin, method, path, { json });
  if (reply.status >= 300) throw new Error(`setup ${method} ${path}: ${reply.status} ${reply.body.slice(0, 200)}`);
  return reply.json;
}

export function putPlan(ctx: AttackContext, name: string, settings: Record<string, number>): Promise<unknown> {
  return admin(ctx, "PUT", `/v1/admin/plans/${name}`, { tokens_per_day: null, tokens_per_month: null, spend_per_month_micros: null, ...settings });
}

function movePlan(ctx: AttackContext, tenant: SeededTenant, plan: string): Promise<unknown> {
  return admin(ctx, "PATCH", `/v1/admin/tenants/${tenant.id}/config`, { plan });
}

/** Runs `attack` with A and B moved as given, and puts both back on their own plans afterwards. */
async function onPlans(ctx: AttackContext, plans: { a?: string; b?: string }, attack: () => Promise<void>): Promise<void> {
  const original = new Map<SeededTenant, string>();
  for (const tenant of [ctx.a, ctx.b]) {
    original.set(tenant, ((await admin(ctx, "GET", `/v1/admin/tenants/${tenant.id}/config`)) as TenantConfigJson).plan);
  }
  try {
    if (plans.a) await movePlan(ctx, ctx.a, plans.a);
    if (plans.b) await movePlan(ctx, ctx.b, plans.b);
    await attack();
  } finally {
    for (const [tenant, plan] of original) await movePlan(ctx, tenant, plan);
  }
}

/** Sends until the first 429 (at most `max` requests); returns how many were admitted and the refusal. */
export async function exhaust(ctx: AttackContext, party: Party, max: number): Promise<{ admitted: number; refusal: Reply | undefined }> {
  let admitted = 0;
  for (let i = 0; i < max; i++) {
    const reply = await ctx.http.send(party, "GET", "/v1/jobs?limit=1");
    if (reply.status === 429) return { admitted, refusal: reply };
    expectStatus(ctx, reply, [200], `${party.label} GET /v1/jobs before its limit`);
    admitted++;
  }
  return { admitted, refusal: undefined };
}

/** A 429 that names its reason, and only the refused tenant's own limit (when it has one). */
export function expectOwnRefusal(ctx: AttackContext, reply: Reply | undefined, who: string, reason: string, limit?: number): void {
  if (!reply) return void ctx.expect(false, `${who} was never refused`);
  const error = (reply.json as RateLimitedJson | undefined)?.error;
  ctx.expect(
    reply.status === 429 && error?.code === "rate_limited" && error.details?.reason === reason && reply.headers["retry-after"] !== undefined,
    `${who}'s refusal: status ${reply.status}, ${JSON.stringify(error)}, expected 429 rate_limited (${reason}) with Retry-After`,
  );
  if (limit !== undefined) {
    ctx.expect(
      reply.headers["ratelimit-limit"] === String(limit) && reply.headers["ratelimit-remaining"] === "0",
      `${who}'s 429 reports limit ${reply.headers["ratelimit-limit"]} / remaining ${reply.headers["ratelimit-remaining"]}, expected its own ${limit} / 0`,
    );
  }
}

export const limitAttacks: Attack[] = [
  {
    name: "A exhausts its requests/min; B on the same plan is admitted",
    path: "429 rate_limit (per-tenant window)",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { a, b } = ctx.parties;
      await putPlan(ctx, RPM_PLAN, { requests_per_minute: 3 });
      await onPlans(ctx, { a: RPM_PLAN, b: RPM_PLAN }, async () => {
        const exhausted = await exhaust(ctx, a, 6);
        ctx.expect(exhausted.admitted <= 3, `A was admitted ${exhausted.admitted} times at 3 requests/min`);
        expectOwnRefusal(ctx, exhausted.refusal, "A", "rate_limit", 3);
        // Same plan, same minute, same limiter: B's window is its own, counting down from 3.
        const headers = { "x-tenant-id": ctx.a.id, "x-tenant": ctx.a.id };
        const remaining: (string | undefined)[] = [];
        for (const [i, path] of ["/v1/jobs?limit=1", `/v1/jobs?limit=1&tenant_id=${ctx.a.id}`, "/v1/limits"].entries()) {
          const reply = await ctx.http.send(b, "GET", path, { headers: i === 1 ? headers : {} });
          expectStatus(ctx, reply, [200], `B ${path} while A is refused`);
          remaining.push(reply.headers["ratelimit-remaining"]);
        }
        ctx.expect(JSON.stringify(remaining) === JSON.stringify(["2", "1", "0"]), `B's remaining requests went ${JSON.stringify(remaining)}, expected its own 2, 1, 0`);
        // B's traffic did not reset A's window, and B is now refused for its own count.
        const stillA = await ctx.http.send(a, "GET", "/v1/jobs?limit=1");
        expectOwnRefusal(ctx, stillA, "A (after B's requests)", "rate_limit", 3);
        const bRefused = await ctx.http.send(b, "GET", "/v1/jobs?limit=1");
        expectOwnRefusal(ctx, bRefused, "B", "rate_limit", 3);
      });
    },
  },
  {
    name: "B's own 429 carries B's numbers, never A's",
    path: "429 body + RateLimit-* headers",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { a, b } = ctx.parties;
      await putPlan(ctx, RPM_PLAN, { requests_per_minute: 3 });
      await putPlan(ctx, OWN_RPM_PLAN, { requests_per_minute: 5 });
      await onPlans(ctx, { a: RPM_PLAN, b: OWN_RPM_PLAN }, async () => {
        expectOwnRefusal(ctx, (await exhaust(ctx, a, 6)).refusal, "A", "rate_limit", 3);
        const own = await exhaust(ctx, b, 8);
        ctx.expect(own.admitted === 5, `B was admitted ${own.admitted} times at its own 5 requests/min (A's limit is 3)`);
        expectOwnRefusal(ctx, own.refusal, "B", "rate_limit", 5);
        // The refusal names no tenant: nothing in it tells B who else is being refused.
        const text = own.refusal ? `${own.refusal.body}\n${JSON.stringify(own.refusal.headers)}` : "";
        ctx.expect(!text.includes(ctx.a.id) && !text.includes(ctx.a.name), "B's 429 names tenant A");
      });
    },
  },
  {
    name: "A at its concurrency cap; B at its own is admitted",
    path: "429 concurrency_limit (per-tenant slots)",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { a, b } = ctx.parties;
      await putPlan(ctx, CONCURRENCY_PLAN, { max_concurrency: 1 });
      // Both on one slot each. A keeps four searches going at once, so its slot is almost always
      // taken (and A refused); B searches one at a time, so its own slot is always free — B is
      // refused only if A's requests were counted against B.
      await onPlans(ctx, { a: CONCURRENCY_PLAN, b: CONCURRENCY_PLAN }, async () => {
        let pressing = true;
        const aReplies: Reply[] = [];
        const pressure = Promise.all(
          Array.from({ length: 4 }, async (_, w) => {
            for (let i = 0; pressing && i < 50; i++) aReplies.push(await search(ctx, a, `quarterly compensation review ${w}-${i}`));
          }),
        );
        try {
          for (let i = 0; i < 6; i++) {
            const reply = await search(ctx, b, `deploy rollback steps ${i}`);
            expectStatus(ctx, reply, [200], "B's search, one at a time, while A's searches fill A's slot");
          }
        } finally {
          pressing = false;
          await pressure;
        }
        for (const reply of aReplies) expectStatus(ctx, reply, [200, 429], "A's search at one slot");
        expectOwnRefusal(ctx, aReplies.find((r) => r.status === 429), "A", "concurrency_limit");
      });
    },
  },
];
