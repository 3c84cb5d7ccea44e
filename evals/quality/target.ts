import { serve, type ServerType } from "@hono/node-server";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/platform/config.js";
import type { EmbeddingProvider } from "../../src/embeddings/provider.js";
import { buildFence } from "../../src/platform/fence.js";
import { createLogger } from "../../src/observability/logger.js";

/**
 * Where the eval sends its questions: a running Fence (`--url`, `--admin-key`), or one it starts
 * itself. The in-process one is built through `buildFence` like `npm start` does, on a fresh
 * embedded PGlite data folder in a temp directory (removed afterwards), with the default
 * configuration — local embedding model, no LLM, so answers are extractive — and served on a
 * loopback port, so the eval goes through the real HTTP stack either way.
 */
export interface QualityTarget {
  url: string;
  adminKey: string;
  /** For the report: what was measured. */
  description: string;
  /** The eval's tenants are always deleted; this also stops an in-process instance. */
  close(): Promise<void>;
}

export function remoteTarget(url: string, adminKey: string): QualityTarget {
  return { url: url.replace(/\/+$/, ""), adminKey, description: url, close: async () => undefined };
}

export interface InProcessOptions {
  /** An already-loaded model to share (the test does); by default the configured local model is loaded. */
  embeddings?: EmbeddingProvider;
}

export async function startInProcessTarget(options: InProcessOptions = {}): Promise<QualityTarget> {
  const dataDir = await mkdtemp(join(tmpdir(), "fence-quality-"));
  // A per-run secret: nothing fixed to guess, and it never leaves this process.
  const adminKey = `quality-eval-${randomBytes(16).toString("hex")}`;
  const config = loadConfig({ FENCE_ADMIN_KEY: adminKey, FENCE_DATA_DIR: dataDir, LOG_LEVEL: "silent" });
  const fence = await buildFence(config, { embeddings: options.embeddings, logger: createLogger("silent") }).catch(async (error: unknown) => {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  });
  let server: ServerType | undefined;
  const port = await new Promise<number>((resolve) => {
    server = serve({ fetch: (req) => fence.app.fetch(req), port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => resolve(info.port));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    adminKey,
    description: "in-process Fence (embedded PGlite in a temp folder)",
    async close() {
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      await fence.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
