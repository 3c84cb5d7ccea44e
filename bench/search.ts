import { sql } from "drizzle-orm";
import { queryRows } from "../src/db/database.js";
import { Retriever } from "../src/retrieval/retriever.js";
import type { BenchBackend } from "./backends.js";
import type { BenchTenant } from "./corpus.js";
import type { BenchOptions } from "./options.js";
import { seededRandom, shuffled, since, summarize, type LatencySummary } from "./stats.js";
import { QUERY_TEXTS } from "./text-corpus.js";

export interface SearchBenchResult {
  tenant: string;
  tenantChunks: number;
  /** First call per query text: includes embedding the query with the real model (cache miss). */
  cold: LatencySummary;
  /** Measured calls after warm-up: cached query embedding + withTenant + hybrid SQL + assertion. */
  warm: LatencySummary;
  hitsMean: number;
  hitsMin: number;
}

/** The Retriever exactly as buildFence wires it (same caches, same ef_search from the config). */
export function retrieverFor(backend: BenchBackend): Retriever {
  return backend.fence.retriever;
}

/**
 * Section 2. `Retriever.search(ctx, text, k)` for one tenant, one query at a time: a cold pass
 * (each distinct query once, model embedding included), one unmeasured warm-up pass, then
 * `options.queries` measured calls over the query set in a seeded shuffled order.
 */
export async function benchSearch(backend: BenchBackend, tenant: BenchTenant, options: BenchOptions): Promise<SearchBenchResult> {
  const retriever = retrieverFor(backend);
  const cold: number[] = [];
  for (const text of QUERY_TEXTS) {
    const start = performance.now();
    await retriever.search(tenant.ctx, text, options.k);
    cold.push(since(start));
  }
  for (const text of QUERY_TEXTS) await retriever.search(tenant.ctx, text, options.k);

  const random = seededRandom(options.seed + tenant.bulkChunks);
  let order = shuffled(QUERY_TEXTS, random);
  const warm: number[] = [];
  const hits: number[] = [];
  for (let i = 0; i < options.queries; i++) {
    if (i > 0 && i % order.length === 0) order = shuffled(QUERY_TEXTS, random);
    const text = order[i % order.length]!;
    const start = performance.now();
    const results = await retriever.search(tenant.ctx, text, options.k);
    warm.push(since(start));
    hits.push(results.length);
  }
  return {
    tenant: tenant.label,
    tenantChunks: await countChunks(backend, tenant.id),
    cold: summarize(cold),
    warm: summarize(warm),
    hitsMean: hits.reduce((s, v) => s + v, 0) / hits.length,
    hitsMin: Math.min(...hits),
  };
}

/** Chunks of one tenant, or of all tenants when `tenantId` is omitted (owner query, bench only). */
export async function countChunks(backend: BenchBackend, tenantId?: string): Promise<number> {
  const filter = tenantId ? sql`WHERE tenant_id = ${tenantId}::uuid` : sql``;
  const [row] = await backend.fence.db.asOwner((tx) => queryRows<{ n: number | string }>(tx, sql`SELECT count(*) AS n FROM chunks ${filter}`));
  return Number(row!.n);
}
