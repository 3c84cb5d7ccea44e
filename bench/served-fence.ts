import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { loadConfig } from "../src/platform/config.js";
import { queryRows, type Database } from "../src/db/database.js";
import { buildFence, type BuildOptions, type FenceInstance } from "../src/platform/fence.js";
import { serveOnLoopback } from "../test/support/harness.js";
import { scratchDatabase } from "../test/support/scratch-database.js";

/** A plan's limits with nothing limited (PUT /v1/admin/plans/…): benchmarks measure work, not refusals. */
export const UNLIMITED_PLAN = {
  tokens_per_day: null,
  tokens_per_month: null,
  spend_per_month_micros: null,
  requests_per_minute: null,
  tokens_per_minute: null,
  max_concurrency: null,
} as const;

export interface ServedFence {
  fence: FenceInstance;
  url: string;
  adminKey: string;
  /** Stops the server, closes Fence, runs `afterClose`, drops the scratch database. */
  close(): Promise<void>;
}

/**
 * A Fence instance for a benchmark: built through `buildFence` (the wiring `npm start` uses) with
 * a fresh admin key, on PGlite in memory or a scratch Postgres database (dropped on close), and
 * served over real HTTP on a loopback port. If any step fails, what was started is closed again.
 */
export async function startServedFence(setup: {
  backend: "pglite" | "postgres";
  databaseUrl?: string | undefined;
  /** Name prefix of the scratch database. */
  scratchPrefix: string;
  /** Settings beyond the admin key, the data folder and the database. */
  env: Record<string, string>;
  build: BuildOptions;
  /** Closed after Fence (e.g. the log destination the build was given), also when starting fails. */
  afterClose?: () => Promise<void>;
}): Promise<ServedFence> {
  const closers: (() => Promise<void>)[] = [];
  if (setup.afterClose) closers.unshift(setup.afterClose);
  const close = async () => {
    for (const closer of closers) await closer();
  };
  try {
    const adminKey = randomBytes(24).toString("hex");
    const env: Record<string, string> = { ...setup.env, FENCE_ADMIN_KEY: adminKey, FENCE_DATA_DIR: "memory://" };
    if (setup.backend === "postgres") {
      const scratch = await scratchDatabase(setup.databaseUrl!, setup.scratchPrefix);
      closers.push(scratch.drop);
      env.DATABASE_URL = scratch.url;
    }
    const fence = await buildFence(loadConfig(env), setup.build);
    closers.unshift(() => fence.close());
    const server = await serveOnLoopback(fence.app.fetch);
    closers.unshift(server.close);
    return { fence, url: server.url, adminKey, close };
  } catch (error) {
    for (const closer of closers) await closer().catch(() => undefined);
    throw error;
  }
}

/** PostgreSQL's version, and whether it is PGlite, for a benchmark's report. */
export async function describeBackend(db: Database, postgresLabel: string): Promise<string> {
  const [row] = await db.asOwner((tx) => queryRows<{ version: string }>(tx, sql`SELECT version() AS version`));
  const match = /^PostgreSQL (\S+)(?: \((PGlite [^)]+)\))?/.exec(row!.version);
  if (!match) return row!.version;
  return match[2] ? `PostgreSQL ${match[1]} (${match[2]}, WASM, in memory)` : `PostgreSQL ${match[1]} (${postgresLabel})`;
}
