import { sql } from "drizzle-orm";
import { queryRows } from "../src/db/database.js";
import { documents } from "../src/db/schema.js";
import type { BenchBackend } from "./backends.js";
import type { BenchTenant } from "./corpus.js";
import type { BenchOptions } from "./options.js";
import { interleavedPairs, summarize, type LatencySummary } from "./stats.js";

export interface TenantTransactionResult {
  tenant: string;
  /** `withTenant`: BEGIN, the settings message (role, tenant, HNSW; on Citus propagated), the count, COMMIT. */
  fenced: LatencySummary;
  /** The same count in a bare owner transaction: BEGIN, the count, COMMIT. */
  bare: LatencySummary;
  /** Pairs whose two counts agreed. */
  sameCount: number;
  pairs: number;
}

/**
 * Section 4. What `withTenant` itself costs, apart from any search: the smallest tenant statement
 * (a count of the tenant's documents, one index lookup, on Citus one router task) in `withTenant`
 * and in a bare transaction as the owner, interleaved. The difference is the settings message:
 * on one node a parameterised `set_config` statement, on Citus one simple-protocol message of
 * `SET LOCAL`s that Citus also sends to the worker the statement runs on.
 */
export async function benchTenantTransaction(backend: BenchBackend, tenant: BenchTenant, options: BenchOptions): Promise<TenantTransactionResult> {
  const { db } = backend.fence;
  const tenantId = tenant.ctx.tenantId;
  const fenced = () =>
    db.withTenant(tenant.ctx, async (scope) => {
      const [row] = await queryRows<{ n: number }>(scope.tx, sql`SELECT count(*)::int AS n FROM ${documents} WHERE ${scope.owns(documents.tenantId)}`);
      return row!.n;
    });
  const bare = () =>
    db.asOwner(async (tx) => {
      const [row] = await queryRows<{ n: number }>(tx, sql`SELECT count(*)::int AS n FROM ${documents} WHERE ${documents.tenantId} = ${tenantId}`);
      return row!.n;
    });
  for (let i = 0; i < 20; i++) {
    await fenced();
    await bare();
  }
  const { a, b, results } = await interleavedPairs(options.pairs, fenced, bare);
  return {
    tenant: tenant.label,
    fenced: summarize(a),
    bare: summarize(b),
    sameCount: results.filter(([x, y]) => x === y).length,
    pairs: options.pairs,
  };
}
