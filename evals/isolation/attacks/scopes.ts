import { setTimeout as sleep } from "node:timers/promises";
import { chat, EXTRACTIVE_ONLY, type Attack, type AttackContext } from "../attack.js";
import type { Party, Reply } from "../exchange.js";
import { expectLikeMissing } from "./jobs.js";
import { admin } from "./limits.js";
import type { ErrorBodyWith, IssuedKeyJson } from "../../../test/support/api-types.js";

/**
 * Key scopes and expiry (issue 18): a tenant key holds one or more of `query` (search, chat),
 * `ingest` (uploads, batches, jobs), `read` (documents, runs, usage, limits, eval cases) and
 * `owner` (all of these, plus deleting documents and writing eval cases), and may expire. A route
 * the key's scopes do not grant answers 403 `insufficient_scope` naming the scope it needs, before
 * any work; an expired key answers 401 "The API key has expired." on every route.
 *
 * The scope and expiry checks come before any tenant query, so they depend on no lock: the first
 * and third attacks aim only at B's own objects and must be `blocked` in every mode, mode 4
 * included (what they check is read as B's owner or as the harness: never a list that, with the
 * locks off, would show A's data and make them "leak" for the wrong reason). The second attack is
 * a data attack: a key holding `read` reaches the locks, so with every lock off it must leak.
 */

/** What each route needs, as src/core/scopes.ts defines it (not read back from /openapi.json, so a changed declaration is caught). */
interface ScopedRoute {
  method: string;
  path: string;
  json?: unknown;
  needs: "query" | "ingest" | "read" | "owner";
}

type ScopeRefusalJson = ErrorBodyWith<{ required_scope?: string } | undefined>;

const EXPIRED_MESSAGE = "The API key has expired.";

/** Issues B a key through the admin API; `scopes` omitted is the default (`owner`). */
async function issueKeyOfB(ctx: AttackContext, label: string, body: { scopes?: string[]; expires_at?: string }): Promise<{ party: Party; id: string }> {
  const issued = (await admin(ctx, "POST", `/v1/admin/tenants/${ctx.b.id}/keys`, { name: `eval-scopes-${label}`, ...body })) as IssuedKeyJson;
  return { id: issued.id, party: { label: `B's ${label} key`, tenant: "B", key: issued.key } };
}

/** Revokes a key the attack issued (clean-up, not a finding). */
async function revoke(ctx: AttackContext, keyId: string): Promise<void> {
  await ctx.http.send(ctx.parties.admin, "DELETE", `/v1/admin/tenants/${ctx.b.id}/keys/${keyId}`);
}

/** 403 `insufficient_scope` naming exactly the scope the route needs; anything else is a violation. */
function expectScopeRefusal(ctx: AttackContext, reply: Reply, needs: string, what: string): void {
  const error = (reply.json as ScopeRefusalJson | undefined)?.error;
  ctx.expect(
    reply.status === 403 && error?.code === "insufficient_scope" && error.details?.required_scope === needs,
    `${what}: ${reply.status} ${reply.body.slice(0, 120)}, expected 403 insufficient_scope (required_scope ${needs})`,
  );
}

/** B's own document, read with B's own (owner) key: still there, same version. */
async function expectOwnDocumentIntact(ctx: AttackContext): Promise<void> {
  const doc = ctx.b.documents[0]!;
  const got = await ctx.http.send(ctx.parties.b, "GET", `/v1/documents/${doc.id}`);
  const version = (got.json as { version?: number } | undefined)?.version;
  ctx.expect(got.status === 200 && version === doc.version, `B's ${doc.sourceId} afterwards: status ${got.status}, version ${version} (was ${doc.version})`);
}

/** Routes aimed at B's own objects, so a scope check that fails shows as a wrong status or a change to B, never as a leak of A. */
function routesOutsideScope(ctx: AttackContext, scope: "query" | "ingest" | "read", tag: string): ScopedRoute[] {
  const doc = ctx.b.documents[0]!;
  const upload = { method: "POST", path: "/v1/documents", json: { text: `Scope probe ${tag}: the cafeteria opens at eight.`, source_id: `eval-scopes/${tag}.md` }, needs: "ingest" } as const;
  const batch = { method: "POST", path: "/v1/documents/batch", json: { documents: [upload.json] }, needs: "ingest" } as const;
  const list = { method: "GET", path: "/v1/documents?limit=5", needs: "read" } as const;
  const get = { method: "GET", path: `/v1/documents/${doc.id}`, needs: "read" } as const;
  const runs = { method: "GET", path: "/v1/runs?limit=5", needs: "read" } as const;
  const search = { method: "POST", path: "/v1/search", json: { query: "cafeteria opening hours", k: 5 }, needs: "query" } as const;
  // A benign question: the detector counts a chat's question as stored by the tenant unless it was refused.
  const ask = { method: "POST", path: "/v1/chat", json: { question: "When does the cafeteria open?" }, needs: "query" } as const;
  const remove = { method: "DELETE", path: `/v1/documents/${doc.id}`, needs: "owner" } as const;
  const jobs = { method: "GET", path: "/v1/jobs?limit=5", needs: "ingest" } as const;
  const evalCase = { method: "POST", path: "/v1/evals/cases", json: { request_id: `job:${ctx.b.jobs?.jobs[0]?.id ?? crypto.randomUUID()}` }, needs: "owner" } as const;
  const outside: Record<typeof scope, ScopedRoute[]> = {
    query: [upload, batch, list, runs, jobs, evalCase, remove],
    ingest: [list, get, runs, search, ask, remove],
    read: [upload, batch, search, ask, jobs, evalCase, remove],
  };
  return outside[scope];
}

export const scopeAttacks: Attack[] = [
  {
    // Proves the scope check: each of B's single-scope keys, on every route its scope does not
    // grant (the owner-only DELETE among them), gets 403 naming the scope, and nothing of B changes.
    name: "scoped keys of B stay in their scope",
    path: "* /v1/… with query|ingest|read keys",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const issued: string[] = [];
      try {
        const versionBefore = await ctx.dataVersion("B");
        for (const scope of ["query", "ingest", "read"] as const) {
          const key = await issueKeyOfB(ctx, scope, { scopes: [scope] });
          issued.push(key.id);
          for (const route of routesOutsideScope(ctx, scope, `${scope}-${key.id}`)) {
            const reply = await ctx.http.send(key.party, route.method, route.path, { json: route.json });
            expectScopeRefusal(ctx, reply, route.needs, `${key.party.label} ${route.method} ${route.path}`);
          }
        }
        // Ground truth, not B's own list (with every lock off that list would hold A's documents):
        // every stored, replaced or deleted document bumps the version.
        const versionAfter = await ctx.dataVersion("B");
        ctx.expect(versionAfter === versionBefore, `B's data version went from ${versionBefore} to ${versionAfter}: a refused key changed B's documents`);
        await expectOwnDocumentIntact(ctx);
      } finally {
        for (const id of issued) await revoke(ctx, id);
      }
    },
  },
  {
    // Proves the scope check is no oracle and no way round the locks (I6): B's read key, which
    // holds the scope, gets 404 for A's documents and runs exactly as for ids that do not exist
    // (never 403, never A's data); B's query key, which lacks it, gets the same 403 for A's id as
    // for a random one. The detector scans every reply for A's needles.
    name: "B's scoped keys against A's objects",
    path: "GET /v1/documents/:id, /v1/runs/:request_id",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const issued: string[] = [];
      try {
        const reader = await issueKeyOfB(ctx, "read", { scopes: ["read"] });
        const asker = await issueKeyOfB(ctx, "query", { scopes: ["query"] });
        issued.push(reader.id, asker.id);

        // A's run request ids: a fresh chat of A's (its question names A's canary) and A's jobs.
        const asked = await chat(ctx, ctx.parties.a, `What does the note ${ctx.a.documents[0]!.canary} say?`);
        const requestIds = [asked.headers["x-request-id"], ...(ctx.a.jobs?.jobs ?? []).map((j) => `job:${j.id}`)].filter((id): id is string => !!id);
        ctx.expect(requestIds.length > 1, `no request ids of A to aim at (chat status ${asked.status})`);

        const missingDoc = await ctx.http.send(reader.party, "GET", `/v1/documents/${crypto.randomUUID()}`);
        ctx.expect(missingDoc.status === 404, `${reader.party.label} GET a random document id: status ${missingDoc.status}, expected 404`);
        for (const doc of ctx.a.documents) {
          const reply = await ctx.http.send(reader.party, "GET", `/v1/documents/${doc.id}`);
          expectLikeMissing(ctx, reply, missingDoc, `${reader.party.label} GET A's ${doc.sourceId}`);
        }
        const missingRun = await ctx.http.send(reader.party, "GET", `/v1/runs/${crypto.randomUUID()}`);
        ctx.expect(missingRun.status === 404, `${reader.party.label} GET a random run: status ${missingRun.status}, expected 404`);
        for (const requestId of requestIds) {
          const reply = await ctx.http.send(reader.party, "GET", `/v1/runs/${encodeURIComponent(requestId)}`);
          expectLikeMissing(ctx, reply, missingRun, `${reader.party.label} GET A's run ${requestId}`);
        }
        // B's read key lists: B's own only (any of A's ids, titles or canaries here is a detected leak).
        for (const path of ["/v1/documents?limit=100", "/v1/runs?limit=100"]) {
          const reply = await ctx.http.send(reader.party, "GET", path);
          ctx.expect(reply.status === 200, `${reader.party.label} GET ${path}: status ${reply.status}, expected 200`);
        }

        // Without the scope, A's id and a random id get the same 403: the refusal says nothing of A.
        const refusedMissing = await ctx.http.send(asker.party, "GET", `/v1/documents/${crypto.randomUUID()}`);
        expectScopeRefusal(ctx, refusedMissing, "read", `${asker.party.label} GET a random document id`);
        const refusedVictim = await ctx.http.send(asker.party, "GET", `/v1/documents/${ctx.a.documents[0]!.id}`);
        expectLikeMissing(ctx, refusedVictim, refusedMissing, `${asker.party.label} GET A's ${ctx.a.documents[0]!.sourceId}`);
      } finally {
        for (const id of issued) await revoke(ctx, id);
      }
    },
  },
  {
    // Proves expiry: a key of B's (owner scope, so only expiry can refuse it) works until its
    // expires_at and then answers 401 "The API key has expired." on every tenant route, twice
    // over (a cached copy of the key must not outlive it), and its upload stores nothing.
    name: "an expired key",
    path: "* /v1/… after expires_at",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const expiresAt = Date.now() + 2_000;
      const key = await issueKeyOfB(ctx, "expiring", { expires_at: new Date(expiresAt).toISOString() });
      try {
        const doc = ctx.b.documents[0]!;
        const before = await ctx.http.send(key.party, "GET", `/v1/documents/${doc.id}`);
        ctx.expect(before.status === 200, `${key.party.label} before it expired: status ${before.status}, expected 200 (the key never worked, so its 401s prove nothing)`);

        await sleep(Math.max(0, expiresAt - Date.now()) + 250);
        const versionBefore = await ctx.dataVersion("B");
        const jobId = ctx.b.jobs?.jobs[0]?.id ?? crypto.randomUUID();
        const routes = [
          { method: "GET", path: "/v1/documents?limit=5" },
          { method: "GET", path: `/v1/documents/${doc.id}` },
          { method: "POST", path: "/v1/documents", json: { text: "An upload with an expired key: the cafeteria opens at nine.", source_id: `eval-scopes/expired-${key.id}.md` } },
          { method: "POST", path: "/v1/documents/batch", json: { documents: [{ text: "A batch with an expired key.", source_id: `eval-scopes/expired-batch-${key.id}.md` }] } },
          { method: "GET", path: "/v1/jobs?limit=5" },
          { method: "GET", path: `/v1/jobs/${jobId}` },
          { method: "POST", path: "/v1/search", json: { query: "cafeteria opening hours", k: 5 } },
          { method: "POST", path: "/v1/chat", json: { question: "When does the cafeteria open?" } },
          { method: "POST", path: "/v1/chat", json: { question: "When does the cafeteria open?", stream: true } },
          { method: "GET", path: "/v1/usage?group_by=model" },
          { method: "GET", path: "/v1/limits" },
          { method: "GET", path: "/v1/runs?limit=5" },
          { method: "GET", path: `/v1/runs/job:${jobId}` },
          { method: "GET", path: "/v1/evals/cases" },
          { method: "POST", path: "/v1/evals/cases", json: { request_id: `job:${jobId}` } },
          { method: "DELETE", path: `/v1/documents/${doc.id}` },
        ];
        for (const round of [1, 2]) {
          for (const route of routes) {
            const reply = await ctx.http.send(key.party, route.method, route.path, { json: route.json });
            const error = (reply.json as ErrorBodyWith<unknown> | undefined)?.error;
            ctx.expect(
              reply.status === 401 && error?.code === "unauthorized" && error.message === EXPIRED_MESSAGE,
              `${key.party.label} ${route.method} ${route.path} (round ${round}): ${reply.status} ${reply.body.slice(0, 120)}, expected 401 "${EXPIRED_MESSAGE}"`,
            );
          }
        }
        const versionAfter = await ctx.dataVersion("B");
        ctx.expect(versionAfter === versionBefore, `B's data version went from ${versionBefore} to ${versionAfter}: the expired key stored or deleted something`);
        await expectOwnDocumentIntact(ctx);
      } finally {
        await revoke(ctx, key.id);
      }
    },
  },
];
