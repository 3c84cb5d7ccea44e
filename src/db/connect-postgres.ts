import pg from "pg";
import { drizzle } from "drizzle-orm/node-postgres";
import type { QueueDiscipline } from "../flow/fair-queue.js";
import { openPostgresChangeFeed } from "./change-feed.js";
import * as schema from "./schema.js";
import { Database, type DatabaseOptions, type Distribution, type DrizzleDb, type IsolationMutations } from "./database.js";

/** How the tables are laid out: `auto` asks the database whether it is a Citus coordinator. */
export type DistributionSetting = "auto" | "citus" | "none";

/** See the pool below: how long a session may sit idle inside a transaction before the server ends it. */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 15_000;

/** A client lent by a pool for one transaction; `release` gives it back. */
export interface PgClientLike {
  query: (...args: never[]) => unknown;
  release: (error?: Error | boolean) => void;
}

/**
 * A node-postgres pool, or anything that behaves like one: `query` for single statements and a
 * `connect` that lends a client. A real `pg.Pool` on Node; a per-request pool on Workers
 * (db/request-scoped-pool.ts).
 */
export interface PgPoolLike {
  query: (...args: never[]) => unknown;
  connect: () => Promise<PgClientLike>;
}

/**
 * Wraps a node-postgres pool as Fence's Database (the only way code reaches Postgres).
 *
 * Every transaction runs on one client taken here with `connect()` and released after COMMIT or
 * ROLLBACK. Left to itself, drizzle takes a client only when the pool's class name contains "Pool";
 * for anything else (a minified build, a wrapper) it would send BEGIN, the tenant's set_config and
 * each query through `pool.query` — possibly each on a different connection, so a query could run
 * without the tenant's role and setting. Nothing here depends on a class name: drizzle only ever
 * sees plain objects whose `query` goes to one place (the pool for single statements, the lent
 * client for a transaction).
 */
export function postgresDatabase(pool: PgPoolLike, close: () => Promise<void>, options: DatabaseOptions = {}): Database {
  const db = drizzleOver((...args) => (pool.query as (...a: unknown[]) => unknown).apply(pool, args));
  const onClient = new WeakMap<PgClientLike, DrizzleDb>();
  const transaction: DrizzleDb["transaction"] = async (fn, config) => {
    const client = await pool.connect();
    try {
      let bound = onClient.get(client);
      if (!bound) {
        // One drizzle per physical connection (pools reuse their client objects), not per transaction.
        bound = drizzleOver((...args) => (client.query as (...a: unknown[]) => unknown).apply(client, args));
        onClient.set(client, bound);
      }
      return await bound.transaction(fn, config);
    } finally {
      client.release();
    }
  };
  // The only transaction entry point Database uses; drizzle's own (name-checking) one is never reached.
  Object.defineProperty(db, "transaction", { value: transaction });
  return new Database("postgres", db, close, options);
}

/** drizzle over an object that only has `query`: never a "pool", so drizzle runs its transaction on it as one session. */
function drizzleOver(query: (...args: unknown[]) => unknown): DrizzleDb {
  return drizzle({ client: { query } as unknown as pg.Pool, schema }) as unknown as DrizzleDb;
}

/** Node: one pool per process, reused by every request. */
export async function connectPostgres(options: {
  databaseUrl: string;
  poolSize?: number | undefined;
  mutations?: IsolationMutations | undefined;
  discipline?: QueueDiscipline | undefined;
  distribution?: DistributionSetting | undefined;
}): Promise<Database> {
  const max = options.poolSize ?? 10;
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    max,
    // A process that stalls inside a transaction (a long GC pause, a frozen VM, a partition) must
    // not hold its locks — a tenant's budget lock, a job row — until TCP gives up: the server
    // ends such a session and releases them, so other instances can take its work over.
    // Fence never waits on anything but the database inside a transaction.
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
  });
  // A dropped idle connection must not crash the process; the pool replaces it.
  pool.on("error", () => {});
  let distribution: Distribution;
  try {
    distribution = await resolveDistribution(pool, options.distribution ?? "auto");
  } catch (error) {
    await pool.end();
    throw error;
  }
  return postgresDatabase(pool, () => pool.end(), {
    distribution,
    mutations: options.mutations,
    openChangeFeed: (channel, onError) => openPostgresChangeFeed(options.databaseUrl, channel, { onError }),
    concurrency: max,
    discipline: options.discipline,
  });
}

/** `auto`: Citus when the database has the extension (a coordinator); `citus` insists on it. */
async function resolveDistribution(pool: pg.Pool, setting: DistributionSetting): Promise<Distribution> {
  if (setting === "none") return "single-node";
  const { rowCount } = await pool.query("SELECT 1 FROM pg_extension WHERE extname = 'citus'");
  if (rowCount) return "citus";
  if (setting === "citus") {
    throw new Error("FENCE_DISTRIBUTED=citus, but the database has no citus extension: connect to the cluster's coordinator, or run CREATE EXTENSION citus there");
  }
  return "single-node";
}
