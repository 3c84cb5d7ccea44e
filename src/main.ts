import { serve } from "@hono/node-server";
import { ConfigError, loadConfig } from "./config.js";
import { buildFence } from "./fence.js";

/** Node entry: config → database → migrations → model → app → HTTP server. */
async function main(): Promise<void> {
  const config = loadConfig();
  const fence = await buildFence(config);
  const { logger } = fence;
  const server = serve({ fetch: fence.app.fetch, port: config.port, hostname: config.host }, (info) => {
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
  if (error instanceof ConfigError) {
    console.error(error.message);
  } else {
    console.error("Fence failed to start:", error);
  }
  process.exit(1);
});
