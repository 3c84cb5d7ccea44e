import { randomBytes } from "node:crypto";
import { EXTRACTIVE_ONLY, expectStatus, expectVictimDocumentIntact, tenantRoutes, type Attack, type AttackContext } from "../attack.js";
import type { Party } from "../exchange.js";

/**
 * Who may call what (invariant I1): no key, a revoked key, a forged or malformed key, the admin
 * key on tenant routes and a tenant key on admin routes must all be refused with 401 — on every
 * route, before any tenant data is touched — and must not leave A's data changed.
 */

async function refusedEverywhere(ctx: AttackContext, party: Party, headers: Record<string, string> = {}, auth = true): Promise<void> {
  for (const route of tenantRoutes(ctx)) {
    const reply = await ctx.http.send(party, route.method, route.path, { json: route.json, headers, auth });
    expectStatus(ctx, reply, [401], `${party.label} ${route.method} ${route.path}`);
  }
  await expectVictimDocumentIntact(ctx, 0);
}

function randomBase62(length: number): string {
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  return Array.from(randomBytes(length), (b) => alphabet[b % 62]).join("");
}

export const identityAttacks: Attack[] = [
  {
    name: "no credentials on every tenant route",
    path: "* /v1/documents|search|chat",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    run: (ctx) => refusedEverywhere(ctx, ctx.parties.anon, {}, false),
  },
  {
    name: "malformed and forged keys",
    path: "* /v1/documents|search|chat",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const aKeyPrefix = ctx.a.key.slice(0, ctx.a.key.lastIndexOf("_") + 7);
      const forged = [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNzd29yZA==",
        `Bearer fence_prod_${randomBase62(40)}`,
        `Bearer ${aKeyPrefix}${randomBase62(34)}`,
        `Bearer ${ctx.a.id}`,
        `Bearer ${ctx.a.keyId}`,
        `Bearer ${ctx.parties.aRevoked.key} ${ctx.b.key}`,
        "Bearer fence_prod_' OR 1=1 --",
        `Bearer fence_prod_${"%".repeat(40)}`,
      ];
      for (const authorization of forged) {
        for (const route of tenantRoutes(ctx).slice(0, 4)) {
          const reply = await ctx.http.send(ctx.parties.anon, route.method, route.path, { json: route.json, headers: { authorization } });
          expectStatus(ctx, reply, [401], `${JSON.stringify(authorization.slice(0, 30))} ${route.method} ${route.path}`);
        }
      }
    },
  },
  {
    name: "revoked key of A on every tenant route",
    path: "* /v1/documents|search|chat",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    run: (ctx) => refusedEverywhere(ctx, ctx.parties.aRevoked),
  },
  {
    name: "admin key on tenant routes",
    path: "* /v1/documents|search|chat",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    run: (ctx) => refusedEverywhere(ctx, ctx.parties.admin),
  },
  {
    name: "tenant keys on admin routes",
    path: "* /v1/admin/{tenants,plans,usage}/...",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const a = ctx.a.id;
      const routes = [
        { method: "GET", path: "/v1/admin/tenants" },
        { method: "POST", path: "/v1/admin/tenants", json: { name: "b-made-this" } },
        { method: "POST", path: `/v1/admin/tenants/${a}/keys`, json: { name: "b-wants-a-key" } },
        { method: "DELETE", path: `/v1/admin/tenants/${a}/keys/${ctx.a.keyId}` },
        { method: "DELETE", path: `/v1/admin/tenants/${a}` },
        { method: "POST", path: `/v1/admin/tenants/${a}/suspend` },
        { method: "POST", path: `/v1/admin/tenants/${a}/resume` },
        { method: "GET", path: `/v1/admin/tenants/${a}/config` },
        { method: "PATCH", path: `/v1/admin/tenants/${a}/config`, json: { plan: "free" } },
        { method: "GET", path: "/v1/admin/plans" },
        { method: "PUT", path: "/v1/admin/plans/enterprise", json: { tokens_per_day: null, tokens_per_month: null, spend_per_month_micros: null } },
        { method: "GET", path: "/v1/admin/usage?group_by=tenant" },
        { method: "GET", path: "/v1/admin/usage?group_by=tenant&format=csv" },
        { method: "GET", path: "/v1/admin/usage/reconciliation" },
      ];
      for (const party of [ctx.parties.b, ctx.parties.a, ctx.parties.aRevoked]) {
        for (const route of routes) {
          const reply = await ctx.http.send(party, route.method, route.path, { json: route.json });
          expectStatus(ctx, reply, [401], `${party.label} ${route.method} ${route.path}`);
        }
      }
      // A's key must still work (not suspended) and A's data still be there: nothing above may have succeeded.
      await expectVictimDocumentIntact(ctx, 0);
    },
  },
  {
    name: "path confusion around /v1/admin",
    path: "GET /v1/admin%2f… //admin …",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const paths = [
        "/v1/admin%2ftenants",
        "/v1//admin/tenants",
        "/v1/ADMIN/tenants",
        "/V1/admin/tenants",
        "/v1/admin",
        "/v1/admin/",
        "/v1/admin/tenants/..%2f..%2fdocuments",
        "/v1/documents/..%2fadmin%2ftenants",
        "/v1/documents/%2e%2e/admin/tenants",
        `/v1/admin/tenants/${ctx.a.id}/keys`,
      ];
      for (const party of [ctx.parties.b, ctx.parties.anon]) {
        for (const path of paths) {
          const reply = await ctx.http.send(party, "GET", path);
          ctx.expect(reply.status >= 400, `${party.label} GET ${path}: status ${reply.status}, expected a refusal`);
        }
      }
    },
  },
];
