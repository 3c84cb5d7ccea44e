import { EXTRACTIVE_ONLY, type Attack, type AttackContext } from "../attack.js";
import type { Party, Reply } from "../exchange.js";

/**
 * The console (issue 19, first slice): pages are one more way to call the same services with the
 * same TenantContext, so B signed into the console must see exactly what B's key sees — never A's
 * titles or ids. B signs in with its key (the sign-in form's CSRF token echoed from its cookie),
 * then reads its documents page, with and without a cursor made of A's document ids and with A's
 * tenant id smuggled in the query. Every reply is recorded, so the detector scans the pages for
 * A's needles. A data attack: with every lock off (mode 4) the page lists A's documents and leaks.
 *
 * The session's form (sign-in CSRF, signed session cookie) is checked as well: a sign-in without
 * the form's token, and a session cookie B forged, open nothing.
 */

const formBody = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const FORM = { "content-type": "application/x-www-form-urlencoded" };

function cookieOf(reply: Reply, name: string): string | undefined {
  const header = reply.headers["set-cookie"] ?? "";
  // fetch joins several Set-Cookie headers with ", "; each cookie starts with its name.
  const match = new RegExp(`(?:^|, )${name}=([^;]*)`).exec(header);
  return match?.[1];
}

/** Signs `party` into the console; the session cookie, or undefined with the reason recorded as a failure. */
async function signIn(ctx: AttackContext, party: Party): Promise<string | undefined> {
  const form = await ctx.http.send(party, "GET", "/console/sign-in", { auth: false });
  const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)?.[1];
  const csrfCookie = cookieOf(form, "fence_console_signin");
  ctx.expectHealthy(form.status === 200 && csrf !== undefined && csrfCookie !== undefined, `${party.label}: the sign-in form did not load (status ${form.status})`);
  if (!csrf || !csrfCookie) return undefined;
  const reply = await ctx.http.send(party, "POST", "/console/sign-in", {
    auth: false,
    body: formBody({ csrf, key: party.key ?? "" }),
    headers: { ...FORM, cookie: `fence_console_signin=${csrfCookie}` },
  });
  const session = cookieOf(reply, "fence_console");
  ctx.expectHealthy(reply.status === 303 && session !== undefined, `${party.label}: console sign-in answered ${reply.status}`);
  return session;
}

export const consoleAttacks: Attack[] = [
  {
    name: "B's console session reads only B's documents",
    path: "POST /console/sign-in, GET /console/documents",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { b } = ctx.parties;
      const session = await signIn(ctx, b);
      if (!session) return;
      const cookie = { cookie: `fence_console=${session}` };
      const victim = ctx.a.documents[0]!;
      const cursors = [
        Buffer.from(JSON.stringify({ createdAt: new Date(Date.now() + 86_400_000).toISOString(), id: victim.id })).toString("base64url"),
        Buffer.from(`${new Date(Date.now() + 86_400_000).toISOString()}|${victim.id}`).toString("base64url"),
      ];
      for (const path of ["/console/documents", `/console/documents?tenant_id=${ctx.a.id}&tenant=${ctx.a.id}`, ...cursors.map((c) => `/console/documents?cursor=${c}`)]) {
        const page = await ctx.http.send(b, "GET", path, { auth: false, headers: { ...cookie, "x-tenant-id": ctx.a.id } });
        ctx.expect(page.status === 200 || page.status === 400, `B GET ${path}: status ${page.status}`);
      }
    },
  },
  {
    name: "console sign-in without its form's token, and a forged session",
    path: "POST /console/sign-in, GET /console/documents",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const { b } = ctx.parties;
      const noToken = await ctx.http.send(b, "POST", "/console/sign-in", { auth: false, body: formBody({ csrf: "guess", key: b.key ?? "" }), headers: FORM });
      ctx.expect(noToken.status === 403 && cookieOf(noToken, "fence_console") === undefined, `sign-in without the form's token: status ${noToken.status}`);
      const forgedSession = Buffer.from(JSON.stringify({ kind: "tenant", keyHash: "0".repeat(64), csrf: "x", expiresAt: Date.now() + 3_600_000 })).toString();
      for (const value of [encodeURIComponent(`${forgedSession}.forged-signature`), encodeURIComponent(forgedSession)]) {
        const page = await ctx.http.send(b, "GET", "/console/documents", { auth: false, headers: { cookie: `fence_console=${value}` } });
        ctx.expect(page.status === 303 && page.headers.location === "/console/sign-in", `a forged session cookie: status ${page.status}`);
      }
    },
  },
];
