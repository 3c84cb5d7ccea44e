import { ConfigError, loadConfig } from "./platform/config.js";
import { buildFence } from "./platform/fence.js";
import { serveFence } from "./platform/serve-node.js";

/** Node entry: config → database → migrations → model → app → HTTP server. */
async function main(): Promise<void> {
  const config = loadConfig();
  const fence = await buildFence(config);
  const { logger } = fence;
  const server = serveFence(fence, { port: config.port, hostname: config.host }, (info) => {
    logger.info(
      {
        url: `http://${config.host}:${info.port}`,
        database: fence.db.kind === "postgres" ? "postgres" : `pglite:${config.dataDir}`,
        embeddings: fence.embeddings.model,
        llm: config.llm ? config.llm.model : "none (extractive answers)",
        admin_api: config.adminKey ? "enabled" : "disabled (set FENCE_ADMIN_KEY)",
      },
      "Fence is listening",
    );
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    server.close(() => {
      fence.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

main().catch((error: unknown) => {
  // Start-up failures are operator errors (bad config, folder in use, database unreachable):
  // one clear line, with the stack only when asked for.
  const message = error instanceof Error ? error.message : String(error);
  console.error(error instanceof ConfigError ? message : `Fence failed to start: ${message}`);
  if (process.env.LOG_LEVEL === "debug" && error instanceof Error) console.error(error.stack);
  process.exit(1);
});
