import pg from "pg";
import { sql } from "drizzle-orm";
import type { FenceConfig } from "../src/platform/config.js";
import { queryRows } from "../src/db/database.js";
import type { EmbeddingProvider } from "../src/embeddings/provider.js";
import type { FenceInstance } from "../src/platform/fence.js";
import { startFence } from "../test/support/fence-harness.js";
import { scratchDatabase } from "../test/support/scratch-database.js";
import type { BackendName, BenchOptions } from "./options.js";

export interface BenchBackend {
  name: BackendName;
  fence: FenceInstance;
  config: FenceConfig;
  /** e.g. "PostgreSQL 15.20" / "PostgreSQL 18.6 (PGlite 0.5.14)", and the pgvector version. */
  serverVersion: string;
  pgvectorVersion: string;
  /** Runs a statement outside any transaction (VACUUM), where the backend allows it. */
  runOutsideTransaction?: (statement: string) => Promise<void>;
  close(): Promise<void>;
}

/** Enough memory that the HNSW graph is built in memory (a spill makes the build many times slower). */
const INDEX_BUILD_MEMORY = "512MB";

/**
 * Builds Fence on one backend through the same composition root as the service (`buildFence`):
 * migrations, the model's HNSW index, roles and RLS all exactly as in production.
 * Postgres gets a dedicated database that is dropped and recreated on every run, so the bench never
 * touches the database named in DATABASE_URL.
 */
export async function openBackend(name: BackendName, options: BenchOptions, embeddings: EmbeddingProvider): Promise<BenchBackend> {
  let benchUrl: string | undefined;
  let dropScratch = async () => {};
  if (name === "postgres") benchUrl = await recreateBenchDatabase(options.databaseUrl, options.benchDatabase);
  if (name === "citus") {
    // A database of its own on every node of the cluster, dropped at the end.
    const scratch = await scratchDatabase(options.citusUrl!, "fence_bench_citus");
    benchUrl = scratch.url;
    dropScratch = scratch.drop;
  }
  const started = await startFence({ databaseUrl: benchUrl, build: { embeddings } });
  const { fence, config } = started;
  const close = async () => {
    await started.close();
    await dropScratch();
  };
  if (name === "pglite") {
    // One session: a session-level setting reaches the later CREATE INDEX.
    await fence.db.asOwner((tx) => tx.execute(sql`SELECT set_config('maintenance_work_mem', ${INDEX_BUILD_MEMORY}, false)`));
  }
  const [info] = await fence.db.asOwner((tx) =>
    queryRows<{ version: string; vector: string }>(
      tx,
      sql`SELECT version() AS version, (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS vector`,
    ),
  );
  return {
    name,
    fence,
    config,
    serverVersion: shortVersion(info!.version),
    pgvectorVersion: info!.vector,
    runOutsideTransaction: benchUrl ? (statement) => runOnce(benchUrl, statement) : undefined,
    close,
  };
}

/** True when a Postgres server answers at `url` within a couple of seconds. */
export async function postgresReachable(url: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  } finally {
    await client.end().catch(() => {});
  }
}

async function recreateBenchDatabase(serverUrl: string, benchDatabase: string): Promise<string> {
  const target = new URL(serverUrl);
  const configured = decodeURIComponent(target.pathname.replace(/^\//, ""));
  if (configured === benchDatabase) {
    throw new Error(`The bench database (${benchDatabase}) must differ from the one in DATABASE_URL; it is dropped on every run.`);
  }
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${benchDatabase} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${benchDatabase}`);
    // Every pooled connection must see it, so it is a database default rather than a session SET.
    await admin.query(`ALTER DATABASE ${benchDatabase} SET maintenance_work_mem = '${INDEX_BUILD_MEMORY}'`);
  } finally {
    await admin.end();
  }
  target.pathname = `/${benchDatabase}`;
  const benchUrl = target.toString();
  await runOnce(benchUrl, "CREATE EXTENSION IF NOT EXISTS vector");
  return benchUrl;
}

async function runOnce(url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

function shortVersion(version: string): string {
  const match = /^PostgreSQL (\S+)(?: \((PGlite [^)]+)\))?/.exec(version);
  if (!match) return version;
  return match[2] ? `PostgreSQL ${match[1]} (${match[2]}, WASM)` : `PostgreSQL ${match[1]}`;
}
