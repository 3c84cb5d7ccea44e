import { findDatabaseError } from "../observability/loggable-error.js";

/** Deadlock detected, serialization failure: Postgres aborted the transaction to let another finish. */
const ABORTED_FOR_ANOTHER = new Set(["40P01", "40001"]);

/**
 * Runs `transaction` again when Postgres aborted it to break a deadlock: it was rolled back whole,
 * so another attempt is safe, and the transaction it yielded to has finished by then. For platform
 * work that locks rows in an order no tenant's work can share, such as a tenant's purge: it locks
 * the tenant's row, then, by cascade, every row the tenant owns, while a job of the tenant may hold
 * one of those rows and wait for the tenant's row (its foreign-key check).
 */
export function retryingDeadlocks<T>(transaction: () => Promise<T>, attempts = 4): Promise<T> {
  return retrying(transaction, (error) => ABORTED_FOR_ANOTHER.has(String(findDatabaseError(error)?.code)), attempts);
}

/**
 * Runs `transaction` again when a Citus shard it used was split or moved while it ran
 * (`npm run citus:isolate-tenant`): Citus fails a transaction that began on the old shard and then
 * plans a statement on the new one ("could not find valid entry for shard N", XX000), rolled back
 * whole. The next attempt plans on the new shard. Seen in test/integration/db/citus-tenant-shard.test.ts:
 * without this, one search in a few hundred failed during a move.
 */
export function retryingShardMoves<T>(transaction: () => Promise<T>, attempts = 3): Promise<T> {
  return retrying(transaction, isShardMovedError, attempts);
}

export function isShardMovedError(error: unknown): boolean {
  const db = findDatabaseError(error);
  return db?.code === "XX000" && (db.routine === "LookupShardRelationFromCatalog" || /could not find valid entry for shard/.test(String(db.message)));
}

async function retrying<T>(transaction: () => Promise<T>, retryable: (error: unknown) => boolean, attempts: number): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transaction();
    } catch (error) {
      if (attempt >= attempts || !retryable(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25 * attempt + Math.random() * 25));
    }
  }
}
