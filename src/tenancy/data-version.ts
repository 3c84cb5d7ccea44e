import { sql } from "drizzle-orm";
import type { TenantScope } from "../db/database.js";
import { tenants } from "../db/schema.js";
import { announceKeyChange } from "../db/key-changes.js";

/**
 * The tenant's data version is part of every response-cache key (invariant I5): bumping it in the
 * same transaction that changes documents makes every cached answer of that tenant unreachable
 * the moment the change commits, on every instance.
 */
export async function bumpDataVersion(scope: TenantScope): Promise<void> {
  await scope.tx
    .update(tenants)
    .set({ dataVersion: sql`${tenants.dataVersion} + 1` })
    .where(scope.owns(tenants.id));
}

/**
 * For a change that removes content (a document delete): bumps the data version and rotates the
 * tenant's cache secret in one statement, in the deleting transaction. Every cache key of the
 * tenant — answers and query embeddings alike, on every instance and in Redis — was an HMAC under
 * the old secret, so none can be reached once this commits; the next request reads the new one.
 */
export async function forgetCachedContent(scope: TenantScope): Promise<void> {
  await scope.tx
    .update(tenants)
    .set({
      dataVersion: sql`${tenants.dataVersion} + 1`,
      // Made here, not by the database: Citus refuses a volatile function in an UPDATE of a distributed table.
      cacheSecret: newCacheSecret(),
    })
    .where(scope.owns(tenants.id));
  // Verified keys held in memory carry the secret (tenancy/verified-key-cache.ts).
  await announceKeyChange(scope.tx, `tenant:${scope.tenantId}`);
}

/** 32 random bytes as hex, like the column's default (drizzle/0010); Web Crypto, so Workers have it too. */
function newCacheSecret(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(32)), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

export async function readDataVersion(scope: TenantScope): Promise<number> {
  const [row] = await scope.tx
    .select({ version: tenants.dataVersion })
    .from(tenants)
    .where(scope.owns(tenants.id));
  return row?.version ?? 0;
}
