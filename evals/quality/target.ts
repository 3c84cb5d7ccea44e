import type { EmbeddingProvider } from "../../src/embeddings/provider.js";
import { startFence } from "../../test/support/fence-harness.js";

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
  const { url, adminKey, close } = await startFence({ pgliteData: "temp", build: { embeddings: options.embeddings }, serve: true });
  return { url, adminKey, description: "in-process Fence (embedded PGlite in a temp folder)", close };
}
