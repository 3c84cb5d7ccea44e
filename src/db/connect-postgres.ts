import pg from "pg";
import { drizzle } from "drizzle-orm/node-postgres";
import * as schema from "./schema.js";
import { Database, type DrizzleDb, type IsolationMutations } from "./database.js";

/** See the pool below: how long a session may sit idle inside a transaction before the server ends it. */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 15_000;

/**
 * What drizzle needs of a node-postgres pool: `query` and a `connect` that lends a client for a
 * transaction. A real `pg.Pool` on Node; a per-request pool on Workers (platform/request-scoped-pool.ts).
 */
export interface PgPoolLike {
  query: (...args: never[]) => unknown;
  connect: (...args: never[]) => unknown;
}

/** Wraps a node-postgres pool as Fence's Database (the only way code reaches Postgres). */
export function postgresDatabase(pool: PgPoolLike, close: () => Promise<void>, mutations?: IsolationMutations): Database {
  const db = drizzle(pool as unknown as pg.Pool, { schema }) as unknown as DrizzleDb;
  return new Database("postgres", db, close, mutations);
}

/** Node: one pool per process, reused by every request. */
export function connectPostgres(options: { databaseUrl: string; poolSize?: number; mutations?: IsolationMutations }): Database {
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    max: options.poolSize ?? 10,
    // A process that stalls inside a transaction (a long GC pause, a frozen VM, a partition) must
    // not hold its locks — a tenant's budget lock, a job row — until TCP gives up: the server
    // ends such a session and releases them, so other instances can take its work over.
    // Fence never waits on anything but the database inside a transaction.
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
  });
  // A dropped idle connection must not crash the process; the pool replaces it.
  pool.on("error", () => {});
  return postgresDatabase(pool, () => pool.end(), options.mutations);
}
