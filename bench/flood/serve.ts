import pino from "pino";
import type { QueueDiscipline } from "../../src/flow/fair-queue.js";
import { createLogger } from "../../src/observability/logger.js";
import { describeBackend, startFence } from "../../test/support/fence-harness.js";

/**
 * One Fence build as the flood bench serves it, in a process of its own, so the server never
 * shares an event loop (or a thread's CPU) with the load generators: `npm start`'s wiring
 * (buildFence, the default local embedding model) with the scheduling given on argv
 * (`--scheduling=fifo|fair`) and the settings in FLOOD_FENCE_ENV (JSON: DATABASE_URL, LLM_*),
 * served with @hono/node-server on a loopback port. Prints one JSON line (ServeInfo) when it
 * listens; closes cleanly on SIGTERM or SIGINT, and when the orchestrator goes away.
 */
export interface ServeInfo {
  url: string;
  adminKey: string;
  backend: string;
}

async function main(): Promise<void> {
  const scheduling = /^--scheduling=(fifo|fair)$/.exec(process.argv[2] ?? "")?.[1] as QueueDiscipline | undefined;
  if (!scheduling) throw new Error("usage: serve.ts --scheduling=fifo|fair");
  // Only these settings: a DATABASE_URL or LLM_* in the orchestrator's environment must not leak in.
  const { DATABASE_URL: databaseUrl, ...env } = JSON.parse(process.env.FLOOD_FENCE_ENV ?? "{}") as Record<string, string>;
  // Errors only, to stderr (shown by the orchestrator): a 500 in a run must explain itself, and
  // stdout carries the one JSON line the orchestrator waits for.
  const logger = createLogger("error", pino.destination(2));
  // The orchestrator owns the scratch database (it outlives a build killed mid-run), so it is used as given.
  const served = await startFence({ databaseUrl, env, build: { scheduling, logger }, serve: true });
  const backend = await describeBackend(served.fence.db, "scratch database");
  process.stdout.write(`${JSON.stringify({ url: served.url, adminKey: served.adminKey, backend } satisfies ServeInfo)}\n`);

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    served.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.on("disconnect", stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`flood serve.ts: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
