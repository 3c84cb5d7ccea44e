import { mkdir } from "node:fs/promises";
import { lockDataDir } from "./data-dir-lock.js";
import * as schema from "./schema.js";
import { Database, type DrizzleDb, type IsolationMutations } from "./database.js";

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
    const { connectPostgres } = await import("./connect-postgres.js");
    return connectPostgres({ databaseUrl: options.databaseUrl, poolSize: options.poolSize, mutations: options.mutations });
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
