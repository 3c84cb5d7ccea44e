import { EXTRACTIVE_ONLY, type Attack, type AttackContext } from "../attack.js";
import { AttackerHttp, type Party } from "../exchange.js";

/**
 * GET /metrics holds every tenant's figures under its tenant id, so it is a platform endpoint:
 * B's key, A's own key, A's revoked key and no key at all must get 401 there — also through path
 * variants, smuggled tenant ids and a key moved into the query string — and no reply may carry a
 * tenant id (the detector scans every reply; for B, A's id is a needle; for A, B's is).
 *
 * The figures are really there for the taking: a scrape with the admin key, made outside the
 * recorded traffic (the admin legitimately sees every tenant), must show A's tenant id, or the
 * 401s above would prove nothing.
 */

const PATH_VARIANTS = ["/metrics/", "/METRICS", "/Metrics", "/v1/metrics", "/metrics%2f", "//metrics", "/./metrics", "/v1/../metrics", "/metrics.txt"];

async function expectRefused(ctx: AttackContext, party: Party, path: string, headers: Record<string, string> = {}, auth = true): Promise<void> {
  const reply = await ctx.http.send(party, "GET", path, { headers, auth });
  const what = `${party.label} GET ${path}${Object.keys(headers).length ? ` (${Object.keys(headers).join(", ")})` : ""}`;
  ctx.expect(reply.status === 401 || (path !== "/metrics" && !path.startsWith("/metrics?") && reply.status === 404), `${what}: status ${reply.status}, expected 401`);
  ctx.expect(!reply.body.includes("fence_"), `${what}: the reply holds metric samples`);
}

/** The admin's own view, not recorded (so not scanned): the control that A's figures exist. */
async function adminScrape(ctx: AttackContext): Promise<{ status: number; body: string }> {
  const origin = new URL(ctx.http.exchanges[0]!.request.url).origin;
  const reply = await new AttackerHttp(origin).send(ctx.parties.admin, "GET", "/metrics");
  return { status: reply.status, body: reply.body };
}

export const metricsAttacks: Attack[] = [
  {
    name: "tenant keys and outsiders scrape /metrics",
    path: "GET /metrics",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { a, b, anon, aRevoked } = ctx.parties;
      for (const party of [b, a, aRevoked]) {
        await expectRefused(ctx, party, "/metrics");
        await expectRefused(ctx, party, `/metrics?tenant_id=${ctx.a.id}&tenant=${ctx.a.id}`);
        await expectRefused(ctx, party, "/metrics", { "x-tenant-id": ctx.a.id, "x-forwarded-for": "127.0.0.1", "x-real-ip": "127.0.0.1" });
        for (const path of PATH_VARIANTS) await expectRefused(ctx, party, path);
      }
      await expectRefused(ctx, anon, "/metrics", {}, false);
      for (const authorization of [
        `Bearer ${ctx.b.key} ${ctx.a.key}`,
        `Bearer ${ctx.a.id}`,
        `Basic ${Buffer.from(`admin:${ctx.b.key}`).toString("base64")}`,
        "Bearer ",
        "Bearer undefined",
        "Bearer null",
      ]) {
        await expectRefused(ctx, anon, "/metrics", { authorization });
      }
      // The key moved out of the header, where a careless token check might also look.
      await expectRefused(ctx, anon, `/metrics?token=${ctx.b.key}&access_token=${ctx.b.key}`, {}, false);
      await expectRefused(ctx, anon, "/metrics", { cookie: `token=${ctx.b.key}`, "x-api-key": ctx.b.key }, false);

      const control = await adminScrape(ctx);
      ctx.expect(control.status === 200, `admin scrape: status ${control.status}, expected 200`);
      ctx.expect(control.body.includes(`tenant="${ctx.a.id}"`), "admin scrape: A's figures are missing, so the refusals above prove nothing");
    },
  },
];
