import { sql } from "drizzle-orm";
import { queryRows, TenantScope, type Tx } from "../src/db/database.js";
import { hybridSearch, type HybridQuery } from "../src/retrieval/hybrid-search.js";
import type { BenchBackend } from "./backends.js";
import type { BenchTenant } from "./corpus.js";
import type { BenchOptions } from "./options.js";
import { explainScans, runVectorLeg, withExplainingTx } from "./plans.js";
import { interleavedPairs, summarize, type LatencySummary } from "./stats.js";
import { QUERY_TEXTS } from "./text-corpus.js";

export interface OverheadLeg {
  fenced: LatencySummary;
  owner: LatencySummary;
  /** Pairs whose two runs returned the same chunk ids in the same order. */
  identical: number;
  pairs: number;
  fencedScans: string;
  ownerScans: string;
}

export interface OverheadResult {
  tenant: string;
  hybrid: OverheadLeg;
  vectorLeg: OverheadLeg;
}

type Search = (scope: TenantScope, query: HybridQuery) => Promise<readonly { chunkId: string }[]>;

/**
 * Section 3. The same search SQL, built by the same function from the same TenantScope predicate,
 * run (a) through `withTenant` — role fence_app, RLS policy, app filter — and (b) as the owner
 * (a superuser: RLS does not apply) with only the explicit `tenant_id = $1`. Both transactions send
 * one settings statement before the query (the same iterative-scan mode and ef_search; (a) also
 * sets role and tenant), so they make the same round trips and differ only in the isolation work.
 * Runs alternate ABBA ABBA … so drift, caches and GC fall on both sides alike.
 */
export async function benchOverhead(backend: BenchBackend, tenant: BenchTenant, options: BenchOptions, vectors: readonly number[][]): Promise<OverheadResult> {
  const { db, embeddings } = backend.fence;
  const efSearch = backend.config.retrieval.hnswEfSearch;
  const queries: HybridQuery[] = QUERY_TEXTS.map((text, i) => ({
    text,
    vector: vectors[i]!,
    model: embeddings.model,
    dimensions: embeddings.dimensions,
    k: options.k,
  }));

  const fenced = (search: Search, query: HybridQuery, wrap = (s: TenantScope) => s) =>
    db.withTenant(tenant.ctx, (scope) => search(wrap(scope), query), { efSearch });
  const owner = (search: Search, query: HybridQuery, wrap = (s: TenantScope) => s) =>
    db.asOwner(async (tx) => {
      // As withTenant sends them on each backend: on Citus, SET LOCAL propagated to the workers.
      await tx.execute(
        db.distribution === "citus"
          ? sql.raw(`SET LOCAL citus.propagate_set_commands = 'local'; SET LOCAL hnsw.iterative_scan = 'relaxed_order'; SET LOCAL hnsw.ef_search = '${Math.trunc(efSearch)}'`)
          : sql`SELECT
        set_config('hnsw.iterative_scan', 'relaxed_order', true),
        set_config('hnsw.ef_search', ${String(efSearch)}, true)`,
      );
      // Bench only: a scope outside withTenant, so owns() emits the identical `tenant_id = $n` text.
      return search(wrap(new TenantScope(tx as Tx, tenant.ctx, db.mutations)), query);
    });

  // RLS is forced on the tables, so only a superuser (or BYPASSRLS) owner sees rows without it.
  const [who] = await db.asOwner((tx) => queryRows<{ su: string }>(tx, sql`SELECT current_setting('is_superuser') AS su`));
  if (who?.su !== "on") throw new Error("bench: the owner comparison needs a superuser connection");

  const measure = async (search: Search): Promise<OverheadLeg> => {
    const plans = { fenced: "", owner: "" };
    await fenced(search, queries[0]!, (s) => withExplainingTx(s, db.mutations, (p) => (plans.fenced = explainScans(p))));
    await owner(search, queries[0]!, (s) => withExplainingTx(s, db.mutations, (p) => (plans.owner = explainScans(p))));

    const warmup = Math.min(40, Math.max(4, Math.floor(options.pairs / 10)));
    for (let i = 0; i < warmup; i++) {
      await fenced(search, queries[i % queries.length]!);
      await owner(search, queries[i % queries.length]!);
    }
    const { a, b, results } = await interleavedPairs(
      options.pairs,
      (i) => fenced(search, queries[i % queries.length]!),
      (i) => owner(search, queries[i % queries.length]!),
    );
    const identical = results.filter(([hitsA, hitsB]) => sameIds(hitsA, hitsB)).length;
    return { fenced: summarize(a), owner: summarize(b), identical, pairs: options.pairs, fencedScans: plans.fenced, ownerScans: plans.owner };
  };

  return {
    tenant: tenant.label,
    hybrid: await measure(hybridSearch),
    vectorLeg: await measure(runVectorLeg),
  };
}

function sameIds(a: readonly { chunkId: string }[], b: readonly { chunkId: string }[]): boolean {
  return a.length === b.length && a.every((hit, i) => hit.chunkId === b[i]!.chunkId);
}
