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
export async function retryingDeadlocks<T>(transaction: () => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transaction();
    } catch (error) {
      const code = findDatabaseError(error)?.code;
      if (attempt >= attempts || typeof code !== "string" || !ABORTED_FOR_ANOTHER.has(code)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25 * attempt + Math.random() * 25));
    }
  }
}
