import { mkdir } from "node:fs/promises";
import { openPgliteChangeFeed } from "./change-feed.js";
import { lockDataDir } from "./data-dir-lock.js";
import * as schema from "./schema.js";
import type { QueueDiscipline } from "../flow/fair-queue.js";
import { Database, type DrizzleDb, type IsolationMutations } from "./database.js";

export interface ConnectOptions {
  /** Postgres URL; when absent, the embedded PGlite database in `dataDir` is used. */
  databaseUrl?: string | undefined;
  /** PGlite data folder; `memory://` keeps everything in memory (tests). */
  dataDir: string;
  poolSize?: number;
  mutations?: IsolationMutations;
  /** Order of waiting transactions: fair (default) or `fifo` (the benchmarks' baseline). */
  discipline?: QueueDiscipline | undefined;
}

/**
 * Opens the database: node-postgres for a server, PGlite (Postgres in WASM, with pgvector) as the
 * embedded default. Drivers are imported lazily so each deployment loads only its own.
 */
export async function connectDatabase(options: ConnectOptions): Promise<Database> {
  if (options.databaseUrl) {
    const { connectPostgres } = await import("./connect-postgres.js");
    return connectPostgres({ databaseUrl: options.databaseUrl, poolSize: options.poolSize, mutations: options.mutations, discipline: options.discipline });
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
    // PGlite runs one statement at a time: a gate of one orders its transactions fairly.
    return new Database("pglite", db, () => client.close().finally(unlock), {
      mutations: options.mutations,
      openChangeFeed: (channel) => openPgliteChangeFeed(client, channel),
      concurrency: 1,
      discipline: options.discipline,
    });
  } catch (error) {
    await unlock();
    throw error;
  }
}
