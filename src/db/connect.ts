import { mkdir } from "node:fs/promises";
import { lockDataDir } from "./data-dir-lock.js";
import * as schema from "./schema.js";
import { Database, type DrizzleDb, type IsolationMutations } from "./database.js";

/** See the pool below: how long a session may sit idle inside a transaction before the server ends it. */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 15_000;

export interface ConnectOptions {
  /** Postgres URL; when absent, the embedded PGlite database in `dataDir` is used. */
  databaseUrl?: string | undefined;
  /** PGlite data folder; `memory://` keeps everything in memory (tests). */
  dataDir: string;
  poolSize?: number;
  mutations?: IsolationMutations;
}

/**
 * Opens the database: node-postgres for a server, PGlite (Postgres in WASM, with pgvector) as the
 * embedded default. Drivers are imported lazily so each deployment loads only its own.
 */
export async function connectDatabase(options: ConnectOptions): Promise<Database> {
  if (options.databaseUrl) {
    const { default: pg } = await import("pg");
    const { drizzle } = await import("drizzle-orm/node-postgres");
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
    const db = drizzle(pool, { schema }) as unknown as DrizzleDb;
    return new Database("postgres", db, () => pool.end(), options.mutations);
  }

  const { PGlite } = await import("@electric-sql/pglite");
  const { vector } = await import("@electric-sql/pglite-pgvector");
  const { drizzle } = await import("drizzle-orm/pglite");
  const inMemory = options.dataDir.startsWith("memory://");
  let unlock = async () => {};
  if (!inMemory) {
    await mkdir(options.dataDir, { recursive: true });
    unlock = await lockDataDir(options.dataDir);
  }
  try {
    const client = await PGlite.create(inMemory ? undefined : options.dataDir, { extensions: { vector } });
    const db = drizzle(client, { schema }) as unknown as DrizzleDb;
    return new Database("pglite", db, () => client.close().finally(unlock), options.mutations);
  } catch (error) {
    await unlock();
    throw error;
  }
}
