import { EXTRACTIVE_ONLY, expectStatus, type Attack, type AttackContext } from "../attack.js";
import type { Reply } from "../exchange.js";
import type { UsageTruth } from "../usage-canary.js";
import type { LimitsJson, UsageReportJson } from "../../../test/support/api-types.js";

/**
 * Showback and budgets (cost isolation): B reads its usage every way it can group it and its
 * limits, plainly and with A's tenant id smuggled into the query string and headers. A's usage
 * canary (a distinctive event of its own day, model, project and environment, with 7-digit token
 * counts) makes any A row in B's reply a detected leak; totals and budget counters, where rows
 * would merge, must equal B's ground truth exactly. B must also see its own canary — an empty
 * reply would "block" everything and prove nothing.
 */

const GROUP_BY = ["day", "model", "project", "environment", "feature", "key"] as const;
const DAY = 24 * 3600_000;
const QUERY_NAMES = ["tenant_id", "tenantId", "tenant", "TENANT_ID", "tenant_id[]", "x-tenant-id"];
const HEADER_NAMES = ["x-tenant-id", "x-tenant", "tenant", "tenant-id", "tenant_id"];

interface Window {
  from: string;
  to: string;
  query: string;
}

/** A fixed window covering every canary and today, so plain and smuggled replies must be identical. */
function window(): Window {
  const from = new Date(Date.now() - 30 * DAY).toISOString();
  const to = new Date(Date.now() + DAY).toISOString();
  return { from, to, query: `from=${from}&to=${to}` };
}

function smuggledQuery(ctx: AttackContext): string {
  return QUERY_NAMES.map((n) => `${encodeURIComponent(n)}=${ctx.a.id}`).join("&");
}

function smuggledHeaders(ctx: AttackContext): Record<string, string> {
  return Object.fromEntries(HEADER_NAMES.map((h) => [h, ctx.a.id]));
}

/**
 * Sends, and expects what `ours` picks out of the reply to equal what `truth` picks out of B's
 * ground truth. Truth is read before and after: a chat of B settled in between may have moved
 * it, and matching either snapshot is then correct.
 */
async function expectOwnNumbers(
  ctx: AttackContext,
  range: Window,
  send: () => Promise<Reply>,
  ours: (reply: Reply) => number[] | undefined,
  truth: (t: UsageTruth) => number[],
  what: string,
): Promise<Reply> {
  const before = truth(await ctx.usageTruth("B", range.from, range.to));
  const reply = await send();
  const after = truth(await ctx.usageTruth("B", range.from, range.to));
  const got = reply.status === 200 ? ours(reply) : undefined;
  if (got === undefined) return reply; // a wrong status is reported by the caller
  const same = (x: number[]) => x.length === got.length && x.every((v, i) => v === got[i]);
  ctx.expect(same(before) || same(after), `${what}: reply says ${JSON.stringify(got)}, B's ground truth is ${JSON.stringify(after)}`);
  return reply;
}

const usageTotals = (reply: Reply): number[] | undefined => {
  const t = (reply.json as UsageReportJson | undefined)?.totals;
  return t && [t.events, t.input_tokens, t.output_tokens, t.cached_tokens, t.cost_micros];
};
const truthTotals = (t: UsageTruth): number[] => [t.totals.events, t.totals.input_tokens, t.totals.output_tokens, t.totals.cached_tokens, t.totals.cost_micros];

export const usageAttacks: Attack[] = [
  {
    name: "B reads its usage with every group_by",
    path: "GET /v1/usage?group_by=…",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const range = window();
      for (const groupBy of GROUP_BY) {
        const send = () => ctx.http.send(ctx.parties.b, "GET", `/v1/usage?${range.query}&group_by=${groupBy}`);
        const reply = await expectOwnNumbers(ctx, range, send, usageTotals, truthTotals, `group_by=${groupBy} totals`);
        expectStatus(ctx, reply, [200], `GET /v1/usage group_by=${groupBy}`);
        if (groupBy === "model") {
          const own = ctx.b.usageCanary!;
          const rows = (reply.json as UsageReportJson | undefined)?.rows ?? [];
          ctx.expect(
            rows.some((r) => r.key === own.model && r.input_tokens === own.inputTokens),
            `B's own usage canary is missing from its group_by=model reply`,
          );
        }
      }
      // Grouping by tenant is the platform's view, not a tenant's.
      expectStatus(ctx, await ctx.http.send(ctx.parties.b, "GET", `/v1/usage?${range.query}&group_by=tenant`), [400], "group_by=tenant");
    },
  },
  {
    name: "A's tenant id smuggled into /v1/usage",
    path: "GET /v1/usage?tenant_id= + headers",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const range = window();
      for (const groupBy of GROUP_BY) {
        const plain = await ctx.http.send(ctx.parties.b, "GET", `/v1/usage?${range.query}&group_by=${groupBy}`);
        const path = `/v1/usage?${smuggledQuery(ctx)}&${range.query}&group_by=${groupBy}`;
        const send = () => ctx.http.send(ctx.parties.b, "GET", path, { headers: smuggledHeaders(ctx) });
        const smuggled = await expectOwnNumbers(ctx, range, send, usageTotals, truthTotals, `smuggled group_by=${groupBy} totals`);
        expectStatus(ctx, smuggled, [200], `smuggled GET /v1/usage group_by=${groupBy}`);
        ctx.expect(smuggled.body === plain.body, `group_by=${groupBy}: the smuggled tenant id changed the reply`);
      }
      const asTenant = await ctx.http.send(ctx.parties.b, "GET", `/v1/usage?${range.query}&group_by=tenant&${smuggledQuery(ctx)}`);
      expectStatus(ctx, asTenant, [400], "group_by=tenant with A's id");
    },
  },
  {
    name: "B reads its limits, plainly and as A",
    path: "GET /v1/limits (+ smuggled ids)",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const range = window();
      const limitsUsed = (reply: Reply): number[] | undefined => {
        const b = (reply.json as LimitsJson | undefined)?.budgets;
        return b && [b.tokens_per_day.used, b.tokens_per_month.used, b.spend_per_month_micros.used];
      };
      const counters = (t: UsageTruth) => [t.counters.dayTokens, t.counters.monthTokens, t.counters.monthCostMicros];
      const sends = [
        () => ctx.http.send(ctx.parties.b, "GET", "/v1/limits"),
        () => ctx.http.send(ctx.parties.b, "GET", `/v1/limits?${smuggledQuery(ctx)}`, { headers: smuggledHeaders(ctx) }),
      ];
      for (const [i, send] of sends.entries()) {
        const reply = await expectOwnNumbers(ctx, range, send, limitsUsed, counters, `limits${i ? " (smuggled)" : ""} used`);
        expectStatus(ctx, reply, [200], `GET /v1/limits${i ? " (smuggled)" : ""}`);
      }
    },
  },
  {
    name: "tenant keys on the cost admin routes",
    path: "* /v1/admin/usage|plans|tenants/:id/config",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const a = ctx.a.id;
      const routes = [
        { method: "GET", path: "/v1/admin/usage?group_by=tenant" },
        { method: "GET", path: "/v1/admin/usage?group_by=model&format=csv" },
        { method: "GET", path: "/v1/admin/usage/reconciliation" },
        { method: "GET", path: "/v1/admin/plans" },
        { method: "PUT", path: "/v1/admin/plans/free", json: { tokens_per_day: null, tokens_per_month: null, spend_per_month_micros: null } },
        { method: "GET", path: `/v1/admin/tenants/${a}/config` },
        { method: "PATCH", path: `/v1/admin/tenants/${a}/config`, json: { plan: "free", features: { "chat.llm": false } } },
      ];
      for (const party of [ctx.parties.b, ctx.parties.a, ctx.parties.aRevoked, ctx.parties.anon]) {
        for (const route of routes) {
          const reply = await ctx.http.send(party, route.method, route.path, { json: route.json });
          expectStatus(ctx, reply, [401], `${party.label} ${route.method} ${route.path}`);
        }
      }
    },
  },
];
