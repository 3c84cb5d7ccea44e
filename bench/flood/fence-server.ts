import { slowProviderSettings } from "../noisy/slow-provider.js";
import type { QueueDiscipline } from "../../src/flow/fair-queue.js";
import { scratchDatabase } from "../../test/support/scratch-database.js";
import { FenceApi } from "./api.js";
import { firstJsonLine, forkEntry, stopChild } from "./children.js";
import type { FloodBackend, FloodOptions } from "./options.js";
import type { ServeInfo } from "./serve.js";

/** One Fence build running in its own process (serve.ts), and the orchestrator's client for it. */
export interface FenceServer {
  scheduling: QueueDiscipline;
  /** The build's process, to tell when it is idle (quiet.ts). */
  pid: number;
  api: FenceApi;
  /** e.g. "PostgreSQL 18.6 (PGlite 0.5.14, WASM, in memory)". */
  backend: string;
  close(): Promise<void>;
}

/** Scratch databases created and not dropped yet, whatever happened to their build. */
const undropped = new Set<() => Promise<void>>();

/** Drops every scratch database still there (after an error or an interrupt). */
export async function dropScratchDatabases(): Promise<void> {
  for (const drop of [...undropped]) await drop().catch(() => undefined);
}

function once(run: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= run());
}

/** Loading the embedding model and migrating a fresh database take a while on two busy cores. */
const START_TIMEOUT_MS = 180_000;

/**
 * Starts a build: on Postgres with a scratch database of its own (two builds side by side must not
 * run each other's jobs), dropped on close; on PGlite in memory. `llmUrl` gives it the slow fake
 * provider (shape e); without it there is no LLM and every chat is answered extractively.
 */
export async function startFenceServer(
  scheduling: QueueDiscipline,
  backend: FloodBackend,
  options: FloodOptions,
  llmUrl?: string,
): Promise<FenceServer> {
  const settings: Record<string, string> = { ...options.fenceEnv };
  let drop = async () => {};
  if (backend === "postgres") {
    const scratch = await scratchDatabase(options.databaseUrl, "fence_bench_flood");
    settings.DATABASE_URL = scratch.url;
    drop = once(async () => {
      await scratch.drop();
      undropped.delete(drop);
    });
    undropped.add(drop);
  }
  if (backend === "pglite") settings.FENCE_PGLITE_THREAD = String(options.pgliteThread);
  // As bench:noisy: the provider lane is what is contended.
  if (llmUrl) Object.assign(settings, slowProviderSettings(llmUrl, options.llmConcurrency));
  const child = forkEntry(new URL("./serve.ts", import.meta.url), [`--scheduling=${scheduling}`], { FLOOD_FENCE_ENV: JSON.stringify(settings) });
  try {
    const info = await firstJsonLine<ServeInfo>(child, `Fence (${scheduling}) on ${backend}`, START_TIMEOUT_MS);
    const api = new FenceApi(info.url, info.adminKey);
    return {
      scheduling,
      pid: child.pid!,
      api,
      backend: info.backend,
      // Once, however many callers (the run's own clean-up and Ctrl-C's may overlap): all wait for it.
      close: once(async () => {
        await api.close().catch(() => undefined);
        await stopChild(child);
        await drop();
      }),
    };
  } catch (error) {
    await stopChild(child);
    await drop().catch(() => undefined);
    throw error;
  }
}
