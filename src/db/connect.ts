import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { PGlite } from "@electric-sql/pglite";
import { openPgliteChangeFeed } from "./change-feed.js";
import type { PgliteClient } from "./pglite-thread.js";
import { lockDataDir } from "./data-dir-lock.js";
import { DirectoryPayloadFiles, MemoryPayloadFiles } from "./payload-files.js";
import * as schema from "./schema.js";
import type { QueueDiscipline } from "../flow/fair-queue.js";
import type { DistributionSetting } from "./connect-postgres.js";
import { Database, type DrizzleDb, type IsolationMutations } from "./database.js";

export interface ConnectOptions {
  /** Postgres URL; when absent, the embedded PGlite database in `dataDir` is used. */
  databaseUrl?: string | undefined;
  /** PGlite data folder; `memory://` keeps everything in memory (tests). */
  dataDir: string;
  /** PGlite in a worker thread of its own (PgliteThread) instead of on the event loop's thread. */
  pgliteThread?: boolean;
  poolSize?: number;
  mutations?: IsolationMutations;
  /** Order of waiting transactions: fair (default) or `fifo` (the benchmarks' baseline). */
  discipline?: QueueDiscipline | undefined;
  /** Postgres only: whether the tables are distributed on Citus (db/citus.ts); `auto` asks the database. */
  distribution?: DistributionSetting | undefined;
}

/**
 * Opens the database: node-postgres for a server, PGlite (Postgres in WASM, with pgvector) as the
 * embedded default. Drivers are imported lazily so each deployment loads only its own.
 */
export async function connectDatabase(options: ConnectOptions): Promise<Database> {
  if (options.databaseUrl) {
    const { connectPostgres } = await import("./connect-postgres.js");
    return connectPostgres({
      databaseUrl: options.databaseUrl,
      poolSize: options.poolSize,
      mutations: options.mutations,
      discipline: options.discipline,
      distribution: options.distribution,
    });
  }

  const { drizzle } = await import("drizzle-orm/pglite");
  const inMemory = options.dataDir.startsWith("memory://");
  let unlock = async () => {};
  if (!inMemory) {
    await mkdir(options.dataDir, { recursive: true });
    unlock = await lockDataDir(options.dataDir);
  }
  try {
    const client = await openPglite(inMemory ? undefined : options.dataDir, options.pgliteThread ?? false);
    // drizzle's PGlite driver calls only query(…, { rowMode, parsers }) and transaction(), which the
    // thread answers as PGlite does; its parameter type names the PGlite class.
    const db = drizzle(client as unknown as PGlite, { schema }) as unknown as DrizzleDb;
    // PGlite runs one statement at a time: a gate of one orders its transactions fairly.
    return new Database("pglite", db, () => client.close().finally(unlock), {
      mutations: options.mutations,
      openChangeFeed: (channel) => openPgliteChangeFeed(client, channel),
      concurrency: 1,
      discipline: options.discipline,
      payloadFiles: inMemory ? new MemoryPayloadFiles() : new DirectoryPayloadFiles(join(options.dataDir, "fence-job-payloads")),
    });
  } catch (error) {
    await unlock();
    throw error;
  }
}

/**
 * PGlite on the event loop's thread (the default), or on a thread of its own. On its own thread its
 * statements no longer hold the loop, which keeps a victim's latency under a flood of small
 * requests (issue 16: bench:flood shape b); but each statement then waits for a turn of the loop
 * to deliver its reply, so while large bodies are still parsed on the loop (docs/hostile-input.md)
 * a flood of them hurts more. Off by default until those are parsed elsewhere.
 */
async function openPglite(dataDir: string | undefined, onItsOwnThread: boolean): Promise<PgliteClient> {
  if (onItsOwnThread) {
    const { PgliteThread } = await import("./pglite-thread.js");
    return PgliteThread.open(dataDir);
  }
  const { PGlite } = await import("@electric-sql/pglite");
  const { vector } = await import("@electric-sql/pglite-pgvector");
  return PGlite.create(dataDir, { extensions: { vector } });
}
