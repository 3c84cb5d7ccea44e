import { loadConfig } from "../../src/config.js";
import type { IsolationMutations } from "../../src/db/database.js";
import type { EmbeddingProvider } from "../../src/embeddings/provider.js";
import { buildFence, type FenceInstance } from "../../src/fence.js";
import { createLogger } from "../../src/observability/logger.js";
import { serveOnLoopback } from "../../test/support/harness.js";

/**
 * One Fence under attack: built in-process with the mode's mutations (the only way to weaken a
 * lock) and served on an ephemeral loopback port, so the attacks go through the real HTTP stack.
 * PGlite runs in memory, so every instance starts from an empty database; on Postgres the
 * instance shares the database with earlier runs, which is why needles carry the run id.
 */
export interface EvalBackend {
  name: "pglite" | "postgres";
  databaseUrl: string | undefined;
}

export interface RunningFence {
  url: string;
  adminKey: string;
  fence: FenceInstance;
  close(): Promise<void>;
}

export interface InstanceOptions {
  backend: EvalBackend;
  mutations: IsolationMutations;
  embeddings: EmbeddingProvider;
  /** Base URL of the fake OpenAI server; when set, chat runs in LLM mode against it. */
  llmBaseUrl?: string | undefined;
}

/** A per-run admin secret: no fixed credential in the code, and nothing for an attacker to guess. */
export function randomAdminKey(): string {
  return `eval-admin-${crypto.randomUUID()}`;
}

export async function startFence(options: InstanceOptions, adminKey: string): Promise<RunningFence> {
  const config = loadConfig({
    FENCE_ADMIN_KEY: adminKey,
    FENCE_DATA_DIR: "memory://",
    LOG_LEVEL: "silent",
    ...(options.backend.databaseUrl ? { DATABASE_URL: options.backend.databaseUrl } : {}),
    ...(options.llmBaseUrl ? { LLM_BASE_URL: options.llmBaseUrl, LLM_MODEL: "fake-echo" } : {}),
  });
  const fence = await buildFence(config, {
    embeddings: options.embeddings,
    mutations: options.mutations,
    logger: createLogger("silent"),
  });
  try {
    const server = await serveOnLoopback((req) => fence.app.fetch(req));
    return {
      url: server.url,
      adminKey,
      fence,
      async close() {
        await server.close();
        await fence.close();
      },
    };
  } catch (error) {
    await fence.close();
    throw error;
  }
}
