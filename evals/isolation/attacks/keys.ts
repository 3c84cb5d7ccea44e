import { setTimeout as sleep } from "node:timers/promises";
import { EXTRACTIVE_ONLY, type Attack, type AttackContext } from "../attack.js";
import { AttackerHttp, type Party, type Reply } from "../exchange.js";
import { expectLikeMissing } from "./jobs.js";
import { admin } from "./limits.js";
import type { AdminAuditEventListJson, ApiKeyJson, AuditEventListJson, ErrorBodyWith, IssuedKeyJson } from "../../../test/support/api-types.js";

/**
 * The owner's self-service (issue 18): an `owner` key makes (POST /v1/keys), lists (GET /v1/keys),
 * revokes (DELETE /v1/keys/:id — and with it every key it made, transitively) and rotates (POST
 * /v1/keys/:id/rotate, the old secret working for a grace period) its tenant's keys, and reads its
 * tenant's audit trail (GET /v1/audit). Every one of these routes needs `owner`.
 *
 * Attacks 1, 3 and 4 stay inside B: the scope check, a rotated secret and a revoked key's
 * offspring are refused at authentication or before any tenant query, so they depend on no lock
 * and are `blocked` in every mode, mode 4 included. What they check is read as B's owner on B's
 * own objects or as the harness and the admin (B's data version, B's audit trail) — never a list
 * that, with every lock off, would show A's keys and make them "leak" for the wrong reason.
 * Attack 2 is a data attack: B's owner key holds the scope and reaches the locks, so with every
 * lock off it must leak (B's key list and audit trail then hold A's key ids).
 *
 * Reads of the admin's audit trail (the ground truth of which keys a tenant has) and setup calls
 * about A are made outside the recorded traffic, like the metrics attack's scrape: the admin
 * legitimately sees every tenant, and as a recorded party of no tenant its replies naming A's or
 * B's key ids would count as leaks.
 */

type ScopeRefusalJson = ErrorBodyWith<{ required_scope?: string } | undefined>;
type AuditEventJson = AuditEventListJson["events"][number];

const ROTATED_MESSAGE = "The API key was rotated and its grace period has ended.";
const INVALID_KEY_MESSAGE = "Missing or invalid API key.";
const INVALID_CURSOR_MESSAGE = "Invalid pagination cursor.";

interface Route {
  method: string;
  path: string;
  json?: unknown;
}

/** An HTTP client whose exchanges the detector never sees (setup and ground truth, not attack). */
function unrecorded(ctx: AttackContext): AttackerHttp {
  const first = ctx.http.exchanges[0];
  if (!first) throw new Error("setup: an unrecorded call needs the instance's address, known from a recorded request first");
  return new AttackerHttp(new URL(first.request.url).origin);
}

/** Issues B a key through the admin API (recorded: its reply names only the new key). */
async function issueKeyOfB(ctx: AttackContext, label: string, scopes: string[]): Promise<{ party: Party; id: string }> {
  const issued = (await admin(ctx, "POST", `/v1/admin/tenants/${ctx.b.id}/keys`, { name: `eval-keys-${label}`, scopes })) as IssuedKeyJson;
  return { id: issued.id, party: { label: `B's ${label} key`, tenant: "B", key: issued.key } };
}

/** Revokes a key of B's the attack made (clean-up, not a finding; the key and what it made). */
async function revokeOfB(ctx: AttackContext, keyId: string): Promise<void> {
  await ctx.http.send(ctx.parties.admin, "DELETE", `/v1/admin/tenants/${ctx.b.id}/keys/${keyId}`);
}

/** A key made by `maker` through POST /v1/keys; anything but 201 aborts the attack (setup). */
async function makeKey(ctx: AttackContext, maker: Party, label: string, scopes: string[]): Promise<{ party: Party; id: string; issued: IssuedKeyJson }> {
  const reply = await ctx.http.send(maker, "POST", "/v1/keys", { json: { name: `eval-keys-${label}`, scopes } });
  if (reply.status !== 201) throw new Error(`setup: ${maker.label} POST /v1/keys (${label}): ${reply.status} ${reply.body.slice(0, 200)}`);
  const issued = reply.json as IssuedKeyJson;
  return { id: issued.id, issued, party: { label: `B's ${label} key`, tenant: "B", key: issued.key } };
}

/** A tenant's whole audit trail as the platform admin reads it (unrecorded), newest first. */
async function trailOf(ctx: AttackContext, tenantId: string): Promise<AuditEventJson[]> {
  const http = unrecorded(ctx);
  const events: AuditEventJson[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const path = `/v1/admin/audit?tenant_id=${tenantId}&limit=100${cursor ? `&cursor=${cursor}` : ""}`;
    const reply = await http.send(ctx.parties.admin, "GET", path);
    if (reply.status !== 200) throw new Error(`setup: the admin's GET ${path}: ${reply.status} ${reply.body.slice(0, 200)}`);
    const body = reply.json as AdminAuditEventListJson;
    events.push(...body.events);
    cursor = body.next_cursor;
    if (!cursor) break;
  }
  return events;
}

/** Every key the trail says the tenant was given, and those of them not revoked since. */
function keysIn(trail: readonly AuditEventJson[]): { made: Set<string>; live: Set<string> } {
  const targets = (...actions: string[]) => trail.filter((e) => actions.includes(e.action) && e.target_id).map((e) => e.target_id!);
  const made = new Set(targets("key.created"));
  const revoked = new Set(targets("key.revoked", "key.revoked_with_its_creator"));
  return { made, live: new Set([...made].filter((id) => !revoked.has(id))) };
}

const sameSet = (x: ReadonlySet<string>, y: ReadonlySet<string>) => x.size === y.size && [...x].every((v) => y.has(v));

/** 403 `insufficient_scope` naming exactly the scope the route needs; anything else is a violation. */
function expectScopeRefusal(ctx: AttackContext, reply: Reply, needs: string, what: string): void {
  const error = (reply.json as ScopeRefusalJson | undefined)?.error;
  ctx.expect(
    reply.status === 403 && error?.code === "insufficient_scope" && error.details?.required_scope === needs,
    `${what}: ${reply.status} ${reply.body.slice(0, 120)}, expected 403 insufficient_scope (required_scope ${needs})`,
  );
}

/** 401 `unauthorized` with exactly this message. */
function expectUnauthorized(ctx: AttackContext, reply: Reply, message: string, what: string): void {
  const error = (reply.json as ErrorBodyWith<unknown> | undefined)?.error;
  ctx.expect(
    reply.status === 401 && error?.code === "unauthorized" && error.message === message,
    `${what}: ${reply.status} ${reply.body.slice(0, 120)}, expected 401 "${message}"`,
  );
}

/** The owner's self-service routes, every one of which needs `owner`, aimed at B's own keys. */
function selfServiceRoutes(ctx: AttackContext, ownId: string, scope: string): Route[] {
  const ownerKey = ctx.b.keyId;
  return [
    { method: "POST", path: "/v1/keys", json: { name: "eval-keys-escalated", scopes: ["owner"] } },
    // No scopes: the default is `owner`.
    { method: "POST", path: "/v1/keys", json: { name: "eval-keys-default" } },
    // A key of its own scope, which the key-making bound alone would allow: only the route check refuses it.
    { method: "POST", path: "/v1/keys", json: { name: "eval-keys-sibling", scopes: [scope] } },
    { method: "GET", path: "/v1/keys" },
    { method: "GET", path: "/v1/keys?include_revoked=true" },
    // Grace 0: a rotation that went through would end B's owner key at once (checked below).
    { method: "POST", path: `/v1/keys/${ownerKey}/rotate`, json: { grace_seconds: 0 } },
    { method: "DELETE", path: `/v1/keys/${ownerKey}` },
    { method: "POST", path: `/v1/keys/${ownId}/rotate`, json: { grace_seconds: 0 } },
    { method: "DELETE", path: `/v1/keys/${ownId}` },
    { method: "DELETE", path: `/v1/keys/${crypto.randomUUID()}` },
    { method: "GET", path: "/v1/audit" },
    { method: "GET", path: "/v1/audit?limit=100&action=key.created" },
    { method: "GET", path: `/v1/audit?cursor=${crypto.randomUUID()}` },
  ];
}

/** Tenant routes aimed at B's own objects (and B's own keys), for a key that must be refused on all of them. */
function routesOfB(ctx: AttackContext, tag: string, keyId: string): Route[] {
  const doc = ctx.b.documents[0]!;
  const jobId = ctx.b.jobs?.jobs[0]?.id ?? crypto.randomUUID();
  return [
    { method: "GET", path: "/v1/limits" },
    { method: "GET", path: "/v1/documents?limit=5" },
    { method: "GET", path: `/v1/documents/${doc.id}` },
    { method: "POST", path: "/v1/documents", json: { text: `An upload with a dead key (${tag}): the cafeteria opens at nine.`, source_id: `eval-keys/${tag}.md` } },
    { method: "POST", path: "/v1/documents/batch", json: { documents: [{ text: `A batch with a dead key (${tag}).`, source_id: `eval-keys/${tag}-batch.md` }] } },
    { method: "GET", path: `/v1/jobs/${jobId}` },
    { method: "POST", path: "/v1/search", json: { query: "cafeteria opening hours", k: 5 } },
    { method: "POST", path: "/v1/chat", json: { question: "When does the cafeteria open?" } },
    { method: "GET", path: "/v1/runs?limit=5" },
    { method: "DELETE", path: `/v1/documents/${doc.id}` },
    { method: "GET", path: "/v1/keys" },
    { method: "POST", path: "/v1/keys", json: { name: `eval-keys-revival-${tag}` } },
    // The dead secret rotating its own key: a fresh secret would bring it back to life.
    { method: "POST", path: `/v1/keys/${keyId}/rotate`, json: { grace_seconds: 0 } },
    { method: "DELETE", path: `/v1/keys/${ctx.b.keyId}` },
    { method: "GET", path: "/v1/audit" },
  ];
}

/** B's own owner key still authenticates and is not rotated away (grace 0) or revoked. */
async function expectOwnerKeyWorks(ctx: AttackContext): Promise<void> {
  const reply = await ctx.http.send(ctx.parties.b, "GET", "/v1/limits");
  ctx.expect(reply.status === 200, `B's owner key GET /v1/limits afterwards: ${reply.status} ${reply.body.slice(0, 120)}, expected 200`);
}

export const keyAttacks: Attack[] = [
  {
    // Proves the `owner` scope guards self-service: B's query, ingest and read keys cannot make a
    // key (an owner key, or one of their own scope), list keys, revoke or rotate B's owner key or
    // themselves, or read the audit trail — each gets 403 insufficient_scope naming `owner` — and
    // B's keys (the admin's trail: no new event, same live keys), B's data version and B's owner
    // key are unchanged. A check that let any through shows as a wrong status or a change to B.
    name: "scope escalation through /v1/keys",
    path: "* /v1/keys…, /v1/audit with query|ingest|read keys",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const issued: string[] = [];
      try {
        const keys: { scope: string; party: Party; id: string }[] = [];
        for (const scope of ["query", "ingest", "read"]) {
          const key = await issueKeyOfB(ctx, scope, [scope]);
          issued.push(key.id);
          keys.push({ scope, ...key });
        }
        const trailBefore = await trailOf(ctx, ctx.b.id);
        const versionBefore = await ctx.dataVersion("B");
        for (const key of keys) {
          for (const route of selfServiceRoutes(ctx, key.id, key.scope)) {
            const reply = await ctx.http.send(key.party, route.method, route.path, { json: route.json });
            expectScopeRefusal(ctx, reply, "owner", `${key.party.label} ${route.method} ${route.path}`);
          }
        }
        const trailAfter = await trailOf(ctx, ctx.b.id);
        const added = trailAfter.filter((e) => !trailBefore.some((old) => old.id === e.id));
        ctx.expect(added.length === 0, `B's audit trail gained ${added.length} events (${added.map((e) => `${e.action} ${e.target_id}`).join(", ")}): a refused key changed B's keys`);
        const [before, after] = [keysIn(trailBefore).live, keysIn(trailAfter).live];
        ctx.expect(sameSet(before, after), `B's live keys went from ${before.size} to ${after.size} while only refused keys acted`);
        const versionAfter = await ctx.dataVersion("B");
        ctx.expect(versionAfter === versionBefore, `B's data version went from ${versionBefore} to ${versionAfter}: a refused key changed B's documents`);
        await expectOwnerKeyWorks(ctx);
      } finally {
        for (const id of issued) await revokeOfB(ctx, id);
      }
    },
  },
  {
    // Proves that an owner key manages its own tenant's keys and trail only (I6): B's owner key
    // (B attacks A) revoking or rotating A's keys — a spare owner key of A's, A's revoked key, A's
    // own key — answers exactly like a random key id, and A's keys still work afterwards; B's key
    // lists and paged audit trail hold only B's keys and events (every id checked against the
    // admin's record of B; A's key ids are needles, so any of them in a reply is a detected leak);
    // A's audit event ids, as B's cursor, answer exactly like a made-up cursor (400), while B's
    // own event id is a cursor that works.
    name: "B's owner on A's keys and trail",
    path: "DELETE|rotate /v1/keys/:id, GET /v1/keys, /v1/audit",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const b = ctx.parties.b;
      const grace0 = { grace_seconds: 0 };
      const missingDelete = await ctx.http.send(b, "DELETE", `/v1/keys/${crypto.randomUUID()}`);
      ctx.expect(missingDelete.status === 404, `B DELETE a random key id: status ${missingDelete.status}, expected 404`);
      const missingRotate = await ctx.http.send(b, "POST", `/v1/keys/${crypto.randomUUID()}/rotate`, { json: grace0 });
      ctx.expect(missingRotate.status === 404, `B rotating a random key id: status ${missingRotate.status}, expected 404`);
      const missingRotateDefault = await ctx.http.send(b, "POST", `/v1/keys/${crypto.randomUUID()}/rotate`, { json: {} });

      // A spare owner key of A's, issued outside the recorded traffic and planted as A's needles:
      // B may revoke and rotate it (grace 0) without breaking A's own key for later attacks.
      const setup = unrecorded(ctx);
      const issued = await setup.send(ctx.parties.admin, "POST", `/v1/admin/tenants/${ctx.a.id}/keys`, { json: { name: "eval-keys-spare" } });
      if (issued.status !== 201) throw new Error(`setup: issuing A a spare key: ${issued.status} ${issued.body.slice(0, 200)}`);
      const spare = issued.json as IssuedKeyJson;
      ctx.plant([
        { owner: "A", kind: "key-id", value: spare.id },
        { owner: "A", kind: "api-key", value: spare.key },
      ]);
      const spareParty: Party = { label: "A's spare key", tenant: "A", key: spare.key };
      try {
        const targets = [
          { label: "A's spare owner key", id: spare.id, remove: true },
          { label: "A's revoked key", id: ctx.a.revokedKey!.id, remove: true },
          // A's own key is only rotated, with the default grace (an hour): were it revoked, or its
          // secret ended, with every lock off, every later attack would act with a dead key of A's.
          { label: "A's own key", id: ctx.a.keyId, remove: false },
        ];
        for (const target of targets) {
          const rotated = target.remove
            ? await ctx.http.send(b, "POST", `/v1/keys/${target.id}/rotate`, { json: grace0 })
            : await ctx.http.send(b, "POST", `/v1/keys/${target.id}/rotate`, { json: {} });
          expectLikeMissing(ctx, rotated, target.remove ? missingRotate : missingRotateDefault, `B rotating ${target.label}`);
          if (!target.remove) continue;
          const removed = await ctx.http.send(b, "DELETE", `/v1/keys/${target.id}`);
          expectLikeMissing(ctx, removed, missingDelete, `B revoking ${target.label}`);
        }
        for (const party of [ctx.parties.a, spareParty]) {
          const works = await ctx.http.send(party, "GET", "/v1/limits");
          ctx.expect(works.status === 200, `${party.label} GET /v1/limits after B's attempts: ${works.status} ${works.body.slice(0, 120)}, expected 200`);
        }

        // B's lists: B's keys only, B's events only.
        const listedKeys: string[] = [];
        for (const path of ["/v1/keys", "/v1/keys?include_revoked=true"]) {
          const reply = await ctx.http.send(b, "GET", path);
          ctx.expect(reply.status === 200, `B GET ${path}: status ${reply.status}, expected 200`);
          listedKeys.push(...((reply.json as { keys?: ApiKeyJson[] } | undefined)?.keys ?? []).map((k) => k.id));
        }
        const listedEvents: string[] = [];
        let cursor: string | null = null;
        for (let page = 0; page < 100; page++) {
          const path = `/v1/audit?limit=100${cursor ? `&cursor=${cursor}` : ""}`;
          const reply = await ctx.http.send(b, "GET", path);
          ctx.expect(reply.status === 200, `B GET ${path}: status ${reply.status}, expected 200`);
          const body = reply.json as Partial<AuditEventListJson> | undefined;
          listedEvents.push(...(body?.events ?? []).map((e) => e.id));
          cursor = body?.next_cursor ?? null;
          if (!cursor) break;
        }
        const trailOfB = await trailOf(ctx, ctx.b.id);
        const made = keysIn(trailOfB).made;
        const foreignKeys = listedKeys.filter((id) => !made.has(id));
        ctx.expect(foreignKeys.length === 0, `B's key lists hold ${foreignKeys.length} keys that are not B's (${foreignKeys.slice(0, 3).join(", ")})`);
        ctx.expect(listedKeys.includes(ctx.b.keyId), "B's key list lacks B's own key: the list proves nothing");
        const eventsOfB = new Set(trailOfB.map((e) => e.id));
        const foreignEvents = listedEvents.filter((id) => !eventsOfB.has(id));
        ctx.expect(foreignEvents.length === 0, `B's audit trail holds ${foreignEvents.length} events that are not B's (${foreignEvents.slice(0, 3).join(", ")})`);

        // Cursors: A's event ids answer like made-up ones; B's own works, so the 400 is not "cursors are broken".
        const trailOfA = await trailOf(ctx, ctx.a.id);
        ctx.expect(trailOfA.length > 0, "A's audit trail is empty: no event ids of A to aim at");
        for (const query of ["", "&limit=100&action=key.created"]) {
          const missing = await ctx.http.send(b, "GET", `/v1/audit?cursor=${crypto.randomUUID()}${query}`);
          const error = (missing.json as ErrorBodyWith<unknown> | undefined)?.error;
          ctx.expect(
            missing.status === 400 && error?.message === INVALID_CURSOR_MESSAGE,
            `B GET /v1/audit with a made-up cursor${query}: ${missing.status} ${missing.body.slice(0, 120)}, expected 400 "${INVALID_CURSOR_MESSAGE}"`,
          );
          for (const event of trailOfA.slice(0, 12)) {
            const reply = await ctx.http.send(b, "GET", `/v1/audit?cursor=${event.id}${query}`);
            expectLikeMissing(ctx, reply, missing, `B GET /v1/audit with A's ${event.action} event as cursor${query}`);
          }
        }
        const ownCursor = trailOfB[0]?.id;
        if (ownCursor) {
          const own = await ctx.http.send(b, "GET", `/v1/audit?cursor=${ownCursor}`);
          ctx.expect(own.status === 200, `B GET /v1/audit with B's own event as cursor: status ${own.status}, expected 200`);
        }
      } finally {
        await setup.send(ctx.parties.admin, "DELETE", `/v1/admin/tenants/${ctx.a.id}/keys/${spare.id}`);
      }
    },
  },
  {
    // Proves a rotation ends the old secret: a key B's owner made and rotated with a 1 s grace
    // answers 401 "The API key was rotated and its grace period has ended." on every tenant route
    // once the grace is over, twice over (a cached copy must not outlive it) — making, rotating
    // (itself, to get a fresh secret) and revoking keys included — and stores nothing (B's data
    // version and B's keys unchanged), while the new secret, same key id, works.
    name: "a rotated secret past its grace",
    path: "POST /v1/keys/:id/rotate, then * /v1/…",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const made = await makeKey(ctx, ctx.parties.b, "rotated", ["owner"]);
      try {
        const doc = ctx.b.documents[0]!;
        const before = await ctx.http.send(made.party, "GET", `/v1/documents/${doc.id}`);
        ctx.expect(before.status === 200, `${made.party.label} before its rotation: status ${before.status}, expected 200 (the key never worked, so its 401s prove nothing)`);

        const rotation = await ctx.http.send(ctx.parties.b, "POST", `/v1/keys/${made.id}/rotate`, { json: { grace_seconds: 1 } });
        if (rotation.status !== 200) throw new Error(`setup: rotating ${made.id}: ${rotation.status} ${rotation.body.slice(0, 200)}`);
        const rotated = rotation.json as IssuedKeyJson;
        ctx.expect(rotated.id === made.id && rotated.key !== made.issued.key, `the rotation answered key ${rotated.id} (was ${made.id}), a new secret: ${rotated.key !== made.issued.key}`);
        const graceEnds = Date.parse(rotated.prior_secret_expires_at ?? "") || Date.now() + 1_000;
        await sleep(Math.max(0, graceEnds - Date.now()) + 250);

        const old: Party = { label: "B's rotated-away secret", tenant: "B", key: made.issued.key };
        const renewed: Party = { label: "B's rotated key (new secret)", tenant: "B", key: rotated.key };
        const trailBefore = await trailOf(ctx, ctx.b.id);
        const versionBefore = await ctx.dataVersion("B");
        for (const round of [1, 2]) {
          for (const route of routesOfB(ctx, `rotated-${made.id}-${round}`, made.id)) {
            const reply = await ctx.http.send(old, route.method, route.path, { json: route.json });
            expectUnauthorized(ctx, reply, ROTATED_MESSAGE, `${old.label} ${route.method} ${route.path} (round ${round})`);
          }
        }
        const versionAfter = await ctx.dataVersion("B");
        ctx.expect(versionAfter === versionBefore, `B's data version went from ${versionBefore} to ${versionAfter}: the rotated-away secret stored or deleted something`);
        const trailAfter = await trailOf(ctx, ctx.b.id);
        ctx.expect(trailAfter.length === trailBefore.length, `B's audit trail gained ${trailAfter.length - trailBefore.length} events: the rotated-away secret changed B's keys`);

        for (const path of ["/v1/limits", `/v1/documents/${doc.id}`]) {
          const reply = await ctx.http.send(renewed, "GET", path);
          ctx.expect(reply.status === 200, `${renewed.label} GET ${path}: status ${reply.status}, expected 200`);
        }
        await expectOwnerKeyWorks(ctx);
      } finally {
        await revokeOfB(ctx, made.id);
      }
    },
  },
  {
    // Proves revocation is transitive: B's owner makes K1 (owner); K1 makes K2 (query) and K3
    // (owner); K3 makes K4 (ingest). All four work; B's owner revokes K1; then each of them answers
    // 401 "Missing or invalid API key." on every tenant route, twice over — making a key, rotating
    // itself and revoking B's owner key included — and K2's and K4's uploads store nothing (B's
    // data version unchanged). B's owner key, which made K1, still works.
    name: "a key made by a since-revoked owner key",
    path: "POST /v1/keys ×4, DELETE /v1/keys/:id, then * /v1/…",
    kind: "attack",
    variants: EXTRACTIVE_ONLY,
    async run(ctx) {
      const made: string[] = [];
      let revoked = false;
      try {
        const k1 = await makeKey(ctx, ctx.parties.b, "K1 (owner, by B's owner)", ["owner"]);
        made.push(k1.id);
        const k2 = await makeKey(ctx, k1.party, "K2 (query, by K1)", ["query"]);
        made.push(k2.id);
        const k3 = await makeKey(ctx, k1.party, "K3 (owner, by K1)", ["owner"]);
        made.push(k3.id);
        const k4 = await makeKey(ctx, k3.party, "K4 (ingest, by K3)", ["ingest"]);
        made.push(k4.id);
        const chain = [k1, k2, k3, k4];
        const makers = [ctx.b.keyId, k1.id, k1.id, k3.id];
        chain.forEach((k, i) => ctx.expect(k.issued.created_by_key_id === makers[i], `${k.party.label}: created_by_key_id ${k.issued.created_by_key_id}, expected ${makers[i]}`));
        // Each is live: the owner keys read B's limits (200); the query and ingest keys are refused
        // there for their scope (403), not as unknown keys (401).
        for (const [key, status] of [[k1, 200], [k2, 403], [k3, 200], [k4, 403]] as const) {
          const reply = await ctx.http.send(key.party, "GET", "/v1/limits");
          ctx.expect(reply.status === status, `${key.party.label} GET /v1/limits before K1's revocation: status ${reply.status}, expected ${status} (a dead key's 401s prove nothing)`);
        }

        const revocation = await ctx.http.send(ctx.parties.b, "DELETE", `/v1/keys/${k1.id}`);
        revoked = revocation.status === 204;
        if (!revoked) throw new Error(`setup: B's owner revoking K1: ${revocation.status} ${revocation.body.slice(0, 200)}`);

        const versionBefore = await ctx.dataVersion("B");
        for (const round of [1, 2]) {
          for (const key of chain) {
            for (const route of routesOfB(ctx, `revoked-${key.id}-${round}`, key.id)) {
              const reply = await ctx.http.send(key.party, route.method, route.path, { json: route.json });
              expectUnauthorized(ctx, reply, INVALID_KEY_MESSAGE, `${key.party.label} ${route.method} ${route.path} (round ${round})`);
            }
          }
        }
        const versionAfter = await ctx.dataVersion("B");
        ctx.expect(versionAfter === versionBefore, `B's data version went from ${versionBefore} to ${versionAfter}: a key revoked with its maker stored or deleted something`);
        await expectOwnerKeyWorks(ctx);
      } finally {
        // Revoking K1 revoked the rest; if the attack stopped before that, revoke what it made.
        if (!revoked) for (const id of made) await revokeOfB(ctx, id);
      }
    },
  },
];
