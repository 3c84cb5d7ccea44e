import { randomBytes } from "node:crypto";
import {
  BOTH_VARIANTS,
  chat,
  documentIdsIn,
  EXTRACTIVE_ONLY,
  expectStatus,
  expectVictimDocumentIntact,
  search,
  tenantRoutes,
  type Attack,
  type AttackContext,
} from "../attack.js";
import type { Party, Reply } from "../exchange.js";
import { fingerprints, type Needle } from "../leak-detector.js";
import { admin, exhaust, expectOwnRefusal, putPlan } from "./limits.js";
import type { IngestedDocumentJson, IssuedKeyJson, SearchBody, TenantJson } from "../../../test/support/api-types.js";

/**
 * The verified-key cache (issue 16): authentication keeps each verified key — its tenant, whether
 * it is revoked, its plan's admission numbers — in memory, and drops the copy when the database's
 * change feed (drizzle/0011) announces a change to the key's tenant or plan; the instance making
 * the change drops it itself on commit. These attacks warm a key first (a few successful requests,
 * so its copy is in the cache), change what the copy says through the admin API, and then, with no
 * pause, require the change to hold on the very next request. A cache that served its stale copy
 * would admit a revoked key, a deleted tenant's key, or a tenant at its old plan's limits: each
 * attack states which of its expectations that would break.
 *
 * The tenants these attacks make for themselves are tenant "C" for the detector: the data C
 * uploads is planted as needles (`ctx.plant`), so C's data reaching B — or reaching C's key after
 * C is deleted — is a detected leak. Nothing here depends on a lock (the key is read as the
 * platform, before any tenant query): they run in every mode, and on the worker backend, which has
 * no cache, they must pass just the same.
 */

/** Fixed names, so repeated runs on a shared database replace these plans instead of adding more. */
const ROOMY_PLAN = "eval-isolation-cache-roomy";
const TIGHT_PLAN = "eval-isolation-cache-rpm-1";
const ROOMY_RPM = 1000;

function token(): string {
  return randomBytes(5).toString("hex");
}

/** The read-only routes a key is warmed on: each succeeds for its owner and touches nothing. */
function warmingRoutes(docId: string, canary: string): { method: string; path: string; json?: unknown }[] {
  return [
    { method: "GET", path: "/v1/documents?limit=5" },
    { method: "GET", path: `/v1/documents/${docId}` },
    { method: "POST", path: "/v1/search", json: { query: canary, k: 5 } },
    { method: "GET", path: "/v1/limits" },
    { method: "GET", path: "/v1/runs?limit=5" },
  ];
}

/**
 * Uses `party`'s key on `routes` until its copy is surely cached. A 401 here means the key never
 * authenticated, so the attack would prove nothing: that is a failure in every mode. The owner's
 * 200 is expected only while a lock is on (with none, search may trip the assembly assertion).
 */
async function warm(ctx: AttackContext, party: Party, routes: { method: string; path: string; json?: unknown }[]): Promise<Reply[]> {
  const replies: Reply[] = [];
  for (const route of routes) {
    const reply = await ctx.http.send(party, route.method, route.path, { json: route.json });
    ctx.expect(reply.status !== 401, `${party.label} ${route.method} ${route.path} while warming: 401 — the key never authenticated, so it was never cached`);
    ctx.expectHealthy(reply.status === 200, `${party.label} ${route.method} ${route.path} while warming: status ${reply.status}, expected 200`);
    replies.push(reply);
  }
  return replies;
}

/** Every route answers 401 to `party` (the stale copy would have answered 200, 201 or 204). */
async function refusedOn(ctx: AttackContext, party: Party, routes: { method: string; path: string; json?: unknown }[]): Promise<void> {
  for (const route of routes) {
    const reply = await ctx.http.send(party, route.method, route.path, { json: route.json });
    expectStatus(ctx, reply, [401], `${party.label} ${route.method} ${route.path}`);
  }
}

/** A tenant of the attack's own, with one key; `plan` defaults to the deployment's default. */
async function makeTenant(ctx: AttackContext, label: string, plan?: string): Promise<{ id: string; party: Party; keyId: string }> {
  const tenant = (await admin(ctx, "POST", "/v1/admin/tenants", { name: `eval-key-cache-${label}-${token()}`, ...(plan ? { plan } : {}) })) as TenantJson;
  const issued = (await admin(ctx, "POST", `/v1/admin/tenants/${tenant.id}/keys`, { name: `eval-key-cache-${label}` })) as IssuedKeyJson;
  return { id: tenant.id, keyId: issued.id, party: { label: `C (${label})`, tenant: "C", key: issued.key } };
}

/** Purges a tenant the attack made, unless the attack already did (a failure here is not the attack's finding). */
async function dropTenant(ctx: AttackContext, id: string): Promise<void> {
  await ctx.http.send(ctx.parties.admin, "DELETE", `/v1/admin/tenants/${id}`);
}

export const keyCacheAttacks: Attack[] = [
  {
    // Stale copy: the key's copy still says "not revoked", so the routes below answer A's data
    // (200) — and the DELETE removes A's document — instead of 401.
    name: "A's key revoked while warm (key cache)",
    path: "DELETE …/keys/:id, then * /v1/…",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const victimDoc = ctx.a.documents[0]!;
      const issued = (await admin(ctx, "POST", `/v1/admin/tenants/${ctx.a.id}/keys`, { name: "eval-warm-then-revoked", environment: "test" })) as IssuedKeyJson;
      const warmKey: Party = { label: "A's warm key", tenant: "A", key: issued.key };
      await warm(ctx, warmKey, warmingRoutes(victimDoc.id, victimDoc.canary));

      const revoked = await ctx.http.send(ctx.parties.admin, "DELETE", `/v1/admin/tenants/${ctx.a.id}/keys/${issued.id}`);
      ctx.expect(revoked.status === 204, `revoking A's warm key: status ${revoked.status}, expected 204`);
      // No pause: on the instance that revoked, the bound is 0 s. Whoever holds the key now is
      // nobody — every byte of A's data it receives is a leak.
      const holder: Party = { label: "A's key revoked while warm", tenant: null, key: issued.key };
      await refusedOn(ctx, holder, tenantRoutes(ctx));
      // Twice: the first refusal must not have put a "valid" copy back.
      await refusedOn(ctx, holder, tenantRoutes(ctx).slice(0, 4));
      // Revoking one key re-reads the tenant's other keys: A's own key still works, A's data is whole.
      await expectVictimDocumentIntact(ctx, 0);
    },
  },
  {
    // Refusals on record (http/refusals-on-record.ts; on Node answered by the front door before
    // the app): once C's window refused, C's further requests are refused from memory. A record
    // keyed loosely would refuse B too (B's searches would answer 429); a record that outlived the
    // key would answer the revoked key 429 — telling its holder the key was real — instead of 401.
    name: "refusals on record: another tenant, and a key revoked while refused",
    path: "* /v1/… (front door), DELETE …/keys/:id",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      await putPlan(ctx, TIGHT_PLAN, { requests_per_minute: 1 });
      const c = await makeTenant(ctx, "refused", TIGHT_PLAN);
      try {
        const first = await exhaust(ctx, c.party, 3);
        expectOwnRefusal(ctx, first.refusal, "C (1 request/min)", "rate_limit", 1);
        // Now on record: the next ones are refused from memory, with C's own window only.
        for (let i = 0; i < 3; i++) expectOwnRefusal(ctx, (await exhaust(ctx, c.party, 1)).refusal, "C, refused on record", "rate_limit", 1);
        // B is untouched by C's record: its searches are admitted.
        for (let i = 0; i < 3; i++) {
          const reply = await search(ctx, ctx.parties.b, ctx.b.documents[0]!.canary);
          ctx.expect(reply.status !== 429, `B's search while C is refused on record: 429 ${reply.body.slice(0, 200)}`);
          ctx.expectHealthy(reply.status === 200, `B's search while C is refused on record: status ${reply.status}, expected 200`);
        }
        const revoked = await ctx.http.send(ctx.parties.admin, "DELETE", `/v1/admin/tenants/${c.id}/keys/${c.keyId}`);
        ctx.expect(revoked.status === 204, `revoking C's refused key: status ${revoked.status}, expected 204`);
        const holder: Party = { label: "C's key revoked while refused on record", tenant: null, key: c.party.key };
        await refusedOn(ctx, holder, tenantRoutes(ctx).slice(0, 4));
      } finally {
        await dropTenant(ctx, c.id);
      }
    },
  },
  {
    // Stale copy: the key's copy carries the old plan's numbers (1000 requests/min), so after the
    // move to 1/min every request below is admitted, and after the move back (and after the plan
    // itself is lowered) the copy's old numbers decide again — the counts and headers show which.
    name: "tenant moved between plans while its key is warm",
    path: "PATCH …/config {plan}, PUT /v1/admin/plans/:p",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      await putPlan(ctx, ROOMY_PLAN, { requests_per_minute: ROOMY_RPM });
      await putPlan(ctx, TIGHT_PLAN, { requests_per_minute: 1 });
      const c = await makeTenant(ctx, "moved", ROOMY_PLAN);
      const move = (plan: string) => admin(ctx, "PATCH", `/v1/admin/tenants/${c.id}/config`, { plan });
      try {
        const warmed = await exhaust(ctx, c.party, 3);
        ctx.expect(warmed.admitted === 3, `C was admitted ${warmed.admitted} of 3 requests on its roomy plan`);
        const lastWarm = ctx.http.exchanges.at(-1)!; // exhaust's last request
        const warmWindow = lastWarm.headers["ratelimit-limit"];
        ctx.expect(warmWindow === String(ROOMY_RPM), `C's warm-up counted in a window of ${warmWindow}, expected ${ROOMY_RPM}`);

        // Moved to 1 request/min: at most one more is admitted, then 429 at the new plan's limit.
        await move(TIGHT_PLAN);
        const tight = await exhaust(ctx, c.party, 4);
        ctx.expect(tight.admitted <= 1, `C was admitted ${tight.admitted} times right after its move to 1 request/min (the cached plan was kept)`);
        expectOwnRefusal(ctx, tight.refusal, "C (moved to 1/min)", "rate_limit", 1);

        // Moved back: admitted again at once, counted in the roomy plan's window.
        await move(ROOMY_PLAN);
        const back = await ctx.http.send(c.party, "GET", "/v1/jobs?limit=1");
        ctx.expect(
          back.status === 200 && back.headers["ratelimit-limit"] === String(ROOMY_RPM),
          `C right after its move back: status ${back.status}, window ${back.headers["ratelimit-limit"]}, expected 200 in a window of ${ROOMY_RPM}`,
        );

        // The plan itself lowered, the tenant not moved: the plan's new numbers apply at once.
        await putPlan(ctx, ROOMY_PLAN, { requests_per_minute: 2 });
        const lowered = await exhaust(ctx, c.party, 5);
        ctx.expect(lowered.admitted <= 2, `C was admitted ${lowered.admitted} times right after its plan was lowered to 2 requests/min`);
        expectOwnRefusal(ctx, lowered.refusal, "C (plan lowered to 2/min)", "rate_limit", 2);
      } finally {
        await dropTenant(ctx, c.id);
        // Left roomy for the next run on a shared database (the PUT at the top sets it anyway).
        await putPlan(ctx, ROOMY_PLAN, { requests_per_minute: ROOMY_RPM });
      }
    },
  },
  {
    // Stale copy: the deleted tenant's key still authenticates as a tenant id that no longer
    // exists, and the routes below answer 200 (an empty list, a search, an upload into a dead
    // tenant) instead of 401. B's searches and chats must not find the deleted data either (its
    // chunks and cache entries are purged): C's canaries, ids and chunk text are planted needles.
    name: "tenant deleted while its key is warm",
    path: "DELETE /v1/admin/tenants/:id, then * /v1/…",
    kind: "attack",
    variants: BOTH_VARIANTS,
    async run(ctx) {
      const run = token();
      const canary = `CANARY-DOOMED-${run}-DELETED`;
      const metadataCanary = `CANARY-DOOMED-${run}-META`;
      const title = `Halvorsen glacier survey ${run}`;
      const text =
        `${title}\n\nThe Halvorsen glacier survey logged seventeen crevasse anomalies beside the northern moraine, ` +
        `reference ${canary}. Field lead Ingrid Vasquez-Okafor moved the lichen transects to the basalt shelf ` +
        `after the meltwater channel flooded the lower camp in the second week of fieldwork.`;
      const c = await makeTenant(ctx, "deleted", "enterprise");
      let deleted = false;
      try {
        const upload = await ctx.http.send(c.party, "POST", "/v1/documents", {
          json: { title, text, source_id: `eval-key-cache/${run}.md`, metadata: { reference: metadataCanary } },
        });
        if (upload.status !== 201) throw new Error(`setup: C's upload answered ${upload.status} ${upload.body.slice(0, 200)}`);
        const doc = upload.json as IngestedDocumentJson;
        const [, , found] = await warm(ctx, c.party, warmingRoutes(doc.id, canary));
        // C's data, as C's own search returned it, becomes needles: nobody else may ever see it.
        const chunks = ((found?.json as SearchBody | undefined)?.results ?? []).filter((r) => r.document_id === doc.id);
        ctx.expectHealthy(chunks.length > 0, `C's own search for ${canary} does not find C's document (status ${found?.status})`);
        const needles: Needle[] = [
          { owner: "C", kind: "canary", value: canary },
          { owner: "C", kind: "canary", value: metadataCanary },
          { owner: "C", kind: "document-id", value: doc.id },
          { owner: "C", kind: "title", value: title },
          ...chunks.map((r): Needle => ({ owner: "C", kind: "chunk-id", value: r.chunk_id })),
          ...[text, ...chunks.map((r) => r.text)].flatMap(fingerprints).map((value): Needle => ({ owner: "C", kind: "chunk-text", value })),
        ];
        ctx.plant(needles);

        const purged = await ctx.http.send(ctx.parties.admin, "DELETE", `/v1/admin/tenants/${c.id}`);
        deleted = purged.status === 204;
        ctx.expect(deleted, `deleting C: status ${purged.status}, expected 204`);
        // No pause. The key's holder is nobody now: C's own data reaching it is a leak too.
        const holder: Party = { label: "deleted tenant's warm key", tenant: null, key: c.party.key };
        await refusedOn(ctx, holder, [
          ...warmingRoutes(doc.id, canary),
          { method: "POST", path: "/v1/chat", json: { question: `What did the glacier survey find? ${canary}` } },
          { method: "POST", path: "/v1/chat", json: { question: "What did the glacier survey find?", stream: true } },
          { method: "GET", path: "/v1/usage?group_by=model" },
          { method: "GET", path: "/v1/jobs?limit=1" },
          { method: "POST", path: "/v1/documents", json: { text: "an upload into a deleted tenant", source_id: `eval-key-cache/${run}-after.md` } },
          { method: "DELETE", path: `/v1/documents/${doc.id}` },
        ]);
        await refusedOn(ctx, holder, tenantRoutes(ctx));

        // B goes looking for what the deleted tenant held: by canary, by topic, in chat (the
        // echoing LLM returns any chunk that reached its prompt).
        const replies = [
          await search(ctx, ctx.parties.b, canary),
          await search(ctx, ctx.parties.b, "glacier survey crevasse anomalies northern moraine lichen transects"),
          await chat(ctx, ctx.parties.b, "What did the Halvorsen glacier survey log beside the northern moraine?"),
          await chat(ctx, ctx.parties.b, "Who moved the lichen transects, and why?", true),
        ];
        for (const reply of replies) {
          ctx.expect(!documentIdsIn(reply).includes(doc.id) && !reply.body.includes(doc.id), `B's ${reply.status} reply names the deleted tenant's document`);
        }
      } finally {
        if (!deleted) await dropTenant(ctx, c.id);
      }
    },
  },
];
