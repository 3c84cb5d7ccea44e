import type { Database, Tx } from "../../src/db/database.js";

class Rollback extends Error {
  constructor(readonly value: unknown) {
    super("rollback");
  }
}

/**
 * Runs `fn` as the table owner in a transaction that is always rolled back, so catalogue probes
 * and declared-policy shadows leave no trace; returns what `fn` returned.
 */
export async function inRolledBackTransaction<T>(db: Database, fn: (tx: Tx) => Promise<T>): Promise<T> {
  try {
    await db.asOwner(async (tx) => {
      throw new Rollback(await fn(tx));
    });
  } catch (error) {
    if (error instanceof Rollback) return error.value as T;
    throw error;
  }
  throw new Error("unreachable");
}
