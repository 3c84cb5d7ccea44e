import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import { sql } from "drizzle-orm";
import { queryRows, type Database } from "../../src/db/database.js";
import { loadConfig, type FenceConfig } from "../../src/platform/config.js";
import type { ComposedFence } from "../../src/platform/compose-fence.js";
import { buildFence, type BuildOptions, type FenceInstance } from "../../src/platform/fence.js";
import { serveFence } from "../../src/platform/serve-node.js";
import { createLogger } from "../../src/observability/logger.js";
import { scratchDatabase } from "./scratch-database.js";

/**
 * The one way the tests, the evals and the benchmarks start a Fence in their own process: built
 * through `buildFence` (the composition `npm start` uses), on the database asked for, optionally
 * served over real HTTP on a loopback port, and closed in the reverse order of what was started —
 * also when a step of starting fails, so a failed start leaves no database or port behind.
 *
 * Fence on workerd (test/support/worker-harness.ts, evals/isolation/worker-instance.ts) and Fence in
 * a child process (test/support/fence-process.ts, bench/flood) are started elsewhere; the child
 * process itself (bench/flood/serve.ts) starts through here.
 */
export interface HarnessOptions {
  /**
   * Postgres: this server's database; with `scratchPrefix`, a database of its own on that server
   * (created for this instance, dropped when it closes). Without it: embedded PGlite.
   */
  databaseUrl?: string | undefined;
  scratchPrefix?: string;
  /** PGlite's data folder: in memory (the default), or `"temp"` — a fresh folder, removed on close. */
  pgliteData?: "memory" | "temp";
  /** The admin key; by default a random one (nothing fixed to guess, and it never leaves the process). */
  adminKey?: string;
  /** Settings beyond the admin key, the data folder and the database; logs are silent unless set here. */
  env?: Record<string, string>;
  /** Handed to buildFence; the logger defaults to a silent one. */
  build?: BuildOptions;
  /** Serve over HTTP on an ephemeral loopback port. */
  serve?: boolean;
  /** Closed after Fence (e.g. the log destination the build was given), also when starting fails. */
  afterClose?: () => Promise<void>;
}

export interface HarnessedFence {
  fence: FenceInstance;
  config: FenceConfig;
  adminKey: string;
  /** The loopback base URL when `serve` was asked for. */
  url: string | undefined;
  /**
   * Cuts the server's connections, lets requests already admitted end (up to 5 s: a chat cut
   * mid-stream still settles its usage), closes Fence, then what `afterClose` and the database need.
   */
  close(): Promise<void>;
}

/** A harnessed Fence served on loopback: its URL is known. */
export type ServedFence = HarnessedFence & { url: string };

export async function startFence(options: HarnessOptions & { serve: true }): Promise<ServedFence>;
export async function startFence(options?: HarnessOptions): Promise<HarnessedFence>;
export async function startFence(options: HarnessOptions = {}): Promise<HarnessedFence> {
  const closers: (() => Promise<void>)[] = [];
  if (options.afterClose) closers.unshift(options.afterClose);
  const close = once(async () => {
    for (const closer of closers) await closer();
  });
  try {
    // A FENCE_ADMIN_KEY in `env` wins (a test of the admin API with none set passes "").
    const adminKey = options.env?.FENCE_ADMIN_KEY ?? options.adminKey ?? randomBytes(24).toString("hex");
    const env: Record<string, string> = { LOG_LEVEL: "silent", FENCE_DATA_DIR: "memory://", ...options.env, FENCE_ADMIN_KEY: adminKey };
    if (options.databaseUrl && options.scratchPrefix) {
      const scratch = await scratchDatabase(options.databaseUrl, options.scratchPrefix);
      closers.unshift(scratch.drop);
      env.DATABASE_URL = scratch.url;
    } else if (options.databaseUrl) {
      env.DATABASE_URL = options.databaseUrl;
    } else if (options.pgliteData === "temp") {
      const dataDir = await mkdtemp(join(tmpdir(), "fence-"));
      closers.unshift(() => rm(dataDir, { recursive: true, force: true }));
      env.FENCE_DATA_DIR = dataDir;
    }
    const config = loadConfig(env);
    const fence = await buildFence(config, { logger: createLogger("silent"), ...options.build });
    closers.unshift(() => fence.close());
    let url: string | undefined;
    if (options.serve) {
      const server = await serveOnLoopback(fence);
      closers.unshift(async () => {
        await server.close();
        await whenNoneAdmitted(fence, 5_000);
      });
      url = server.url;
    }
    return { fence, config, adminKey, url, close };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}

/**
 * Serves a Fence (its app behind its front door, as `npm start` does: platform/serve-node.ts) or a
 * bare Hono fetch handler on an ephemeral loopback port, for tests that need real HTTP. Closing
 * cuts the connections still open (a closed-loop client never leaves one idle, and close() would
 * otherwise wait for it).
 */
export async function serveOnLoopback(
  served: Pick<ComposedFence, "app" | "frontDoor"> | ((req: Request) => Response | Promise<Response>),
): Promise<{ url: string; close(): Promise<void> }> {
  let server: ServerType;
  const port = await new Promise<number>((resolve) => {
    const address = { port: 0, hostname: "127.0.0.1" };
    const listening = (info: AddressInfo) => resolve(info.port);
    server = typeof served === "function" ? serve({ fetch: served, ...address }, listening) : serveFence(served, address, listening);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ("closeAllConnections" in server) server.closeAllConnections();
      }),
  };
}

/** PostgreSQL's version, and whether it is PGlite, for a report. */
export async function describeBackend(db: Database, postgresLabel: string): Promise<string> {
  const [row] = await db.asOwner((tx) => queryRows<{ version: string }>(tx, sql`SELECT version() AS version`));
  const match = /^PostgreSQL (\S+)(?: \((PGlite [^)]+)\))?/.exec(row!.version);
  if (!match) return row!.version;
  return match[2] ? `PostgreSQL ${match[1]} (${match[2]}, WASM, in memory)` : `PostgreSQL ${match[1]} (${postgresLabel})`;
}

/** Resolves once no request is admitted in `fence`, or after `timeoutMs`. */
async function whenNoneAdmitted(fence: FenceInstance, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (fence.admission.admitted > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

function once(run: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= run());
}
