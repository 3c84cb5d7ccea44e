import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { QueueDiscipline } from "../../src/flow/fair-queue.js";
import { loadConfig } from "../../src/platform/config.js";
import { buildFence } from "../../src/platform/fence.js";
import { createLogger } from "../../src/observability/logger.js";
import pino from "pino";
import { describeBackend } from "../served-fence.js";

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
  const settings = JSON.parse(process.env.FLOOD_FENCE_ENV ?? "{}") as Record<string, string>;
  const adminKey = randomBytes(24).toString("hex");
  // Only these settings: a DATABASE_URL or LLM_* in the orchestrator's environment must not leak in.
  const config = loadConfig({ ...settings, FENCE_ADMIN_KEY: adminKey, FENCE_DATA_DIR: "memory://", LOG_LEVEL: "silent" });
  // Errors only, to stderr (shown by the orchestrator): a 500 in a run must explain itself, and
  // stdout carries the one JSON line the orchestrator waits for.
  const logger = createLogger("error", pino.destination(2));
  const fence = await buildFence(config, { scheduling, logger });
  const backend = await describeBackend(fence.db, "scratch database");
  const server = serve({ fetch: fence.app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${info.port}`, adminKey, backend } satisfies ServeInfo)}\n`);
  });

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // Closed-loop clients never leave a connection idle: cut them, or close() would wait forever.
    if ("closeAllConnections" in server) server.closeAllConnections();
    server.close(() => {
      // A cut request's handler runs on (a chat still settling its usage): the database closes after it.
      whenNoneAdmitted(fence, 5_000)
        .then(() => fence.close())
        .then(
          () => process.exit(0),
          () => process.exit(1),
        );
    });
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.on("disconnect", stop);
}

/** Resolves once no request is admitted in `fence`, or after `timeoutMs`. */
async function whenNoneAdmitted(fence: { admission: { admitted: number } }, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (fence.admission.admitted > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

main().catch((error: unknown) => {
  process.stderr.write(`flood serve.ts: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
