import type { AttackerHttp, Party, Reply } from "./exchange.js";
import type { Needle } from "./leak-detector.js";
import type { SeededTenant } from "./seed.js";
import type { UsageTruth } from "./usage-canary.js";
import type { DocumentJson } from "../../test/support/api-types.js";

/**
 * What an attack is and what it gets to work with. An attack sends requests through `ctx.http`
 * (each exchange is recorded and later scanned for leaks) and states expectations with
 * `ctx.expect` — a wrong status, a document of A changed by B — which are findings even when
 * no byte leaked. `expectHealthy` is for outcomes that only hold while at least one lock is on
 * (e.g. "A still finds its own canary"): with every lock off (mode 4) data is damaged on purpose.
 */
export type ChatVariant = "extractive" | "llm";

export interface Parties {
  /** The victim, tenant A, with its valid key. */
  a: Party;
  /** The attacker, tenant B. */
  b: Party;
  /** No credentials at all. */
  anon: Party;
  /** Tenant A's key that was revoked before the attacks began. */
  aRevoked: Party;
  /** The platform admin key, which is not a tenant key. */
  admin: Party;
}

export interface AttackContext {
  variant: ChatVariant;
  http: AttackerHttp;
  a: SeededTenant;
  b: SeededTenant;
  parties: Parties;
  /** Ground truth read by the harness (not over HTTP): a tenant's current data version. */
  dataVersion(owner: "A" | "B"): Promise<number>;
  /** Ground truth read by the harness: a tenant's charged usage in [from, to) and its budget counters. */
  usageTruth(owner: "A" | "B", from: string, to: string): Promise<UsageTruth>;
  /** Runs the instance's job workers until A's and B's queued jobs have all ended. */
  runJobs(): Promise<void>;
  /**
   * Adds needles of data the attack itself made (tenant "C"): the detector then looks for them in
   * this attack's exchanges and in every later attack's.
   */
  plant(needles: readonly Needle[]): void;
  expect(ok: boolean, message: string): void;
  expectHealthy(ok: boolean, message: string): void;
}

export interface Attack {
  name: string;
  /** The routes it goes through, for the report. */
  path: string;
  /** A control checks that the service works for the rightful owner, so "blocked" is not "broken". */
  kind: "attack" | "control";
  /** Chat attacks run against the extractive answerer and against the (echoing) LLM. */
  variants: readonly ChatVariant[];
  run(ctx: AttackContext): Promise<void>;
}

export const EXTRACTIVE_ONLY: readonly ChatVariant[] = ["extractive"];
export const BOTH_VARIANTS: readonly ChatVariant[] = ["extractive", "llm"];

/** Every tenant route, as (method, path, body) — for attacks that must be refused everywhere. */
export function tenantRoutes(ctx: AttackContext): { method: string; path: string; json?: unknown }[] {
  const victimDoc = ctx.a.documents[0]!;
  return [
    { method: "GET", path: "/v1/documents" },
    { method: "GET", path: `/v1/documents/${victimDoc.id}` },
    { method: "POST", path: "/v1/documents", json: { text: "probe upload", source_id: victimDoc.sourceId } },
    { method: "POST", path: "/v1/search", json: { query: victimDoc.canary, k: 50 } },
    { method: "POST", path: "/v1/chat", json: { question: `What is ${victimDoc.canary}?` } },
    { method: "POST", path: "/v1/chat", json: { question: "List every document.", stream: true } },
    { method: "GET", path: "/v1/usage?group_by=model" },
    { method: "GET", path: "/v1/limits" },
    { method: "GET", path: "/v1/runs?limit=100" },
    { method: "GET", path: `/v1/runs/job:${ctx.a.jobs?.jobs[0]?.id ?? crypto.randomUUID()}` },
    { method: "GET", path: "/v1/evals/cases" },
    { method: "POST", path: "/v1/evals/cases", json: { request_id: `job:${ctx.a.jobs?.jobs[0]?.id ?? crypto.randomUUID()}` } },
    { method: "DELETE", path: `/v1/documents/${victimDoc.id}` },
  ];
}

export function search(ctx: AttackContext, party: Party, query: string, extra: Record<string, unknown> = {}, path = "/v1/search"): Promise<Reply> {
  return ctx.http.send(party, "POST", path, { json: { query, k: 50, ...extra } });
}

export function chat(ctx: AttackContext, party: Party, question: string, stream = false): Promise<Reply> {
  return ctx.http.send(party, "POST", "/v1/chat", { json: { question, stream } });
}

/**
 * A 500 from the assembly assertion is not counted as a wrong status: the attack is then reported
 * as "blocked (assertion)", its own verdict, which still fails a mode with locks on.
 */
export function expectStatus(ctx: AttackContext, reply: Reply, allowed: readonly number[], what: string): void {
  if (isAssertionBlock(reply)) return;
  ctx.expect(allowed.includes(reply.status), `${what}: status ${reply.status}, expected ${allowed.join("/")}`);
}

export function isAssertionBlock(reply: { status: number; body: string }): boolean {
  return reply.body.includes('"tenant_isolation_violation"');
}

/** Document ids in a search, list or chat reply (results, documents or citations). */
export function documentIdsIn(reply: Reply): string[] {
  const body = reply.json as
    | { results?: { document_id: string }[]; documents?: { id: string }[]; citations?: { document_id: string }[] }
    | undefined;
  return [
    ...(body?.results ?? []).map((r) => r.document_id),
    ...(body?.documents ?? []).map((d) => d.id),
    ...(body?.citations ?? []).map((c) => c.document_id),
  ];
}

/** A's document still exists, unchanged, and A's own search still finds it by its canary. */
export async function expectVictimDocumentIntact(ctx: AttackContext, index: number): Promise<void> {
  const doc = ctx.a.documents[index]!;
  const got = await ctx.http.send(ctx.parties.a, "GET", `/v1/documents/${doc.id}`);
  const body = got.json as Partial<DocumentJson> | undefined;
  ctx.expectHealthy(
    got.status === 200 && body?.version === doc.version && body.chunk_count === doc.chunkCount && body.title === doc.title,
    `A's ${doc.sourceId} changed: status ${got.status}, version ${body?.version} (was ${doc.version})`,
  );
  const found = await search(ctx, ctx.parties.a, doc.canary);
  ctx.expectHealthy(documentIdsIn(found).includes(doc.id), `A's search for its canary no longer finds ${doc.sourceId} (status ${found.status})`);
}

/**
 * Brings A's and B's data versions level by uploading filler documents to whichever is behind.
 * The answer cache keys on (tenant, model, data version, question); if the tenant were ever
 * dropped from the key, identical questions would collide only at equal versions — so the cache
 * attack levels them first instead of hoping they happen to match.
 */
export async function levelDataVersions(ctx: AttackContext): Promise<boolean> {
  let gap = Infinity;
  for (let i = 0; i < 50; i++) {
    const [a, b] = [await ctx.dataVersion("A"), await ctx.dataVersion("B")];
    if (a === b) return true;
    // With every lock off one upload bumps every tenant's version: the gap never closes.
    if (Math.abs(a - b) >= gap) return false;
    gap = Math.abs(a - b);
    const party = a < b ? ctx.parties.a : ctx.parties.b;
    const id = crypto.randomUUID();
    await ctx.http.send(party, "POST", "/v1/documents", { json: { text: `Filler note ${id} about the weekly team lunch.`, source_id: `filler/${id}` } });
  }
  return false;
}
