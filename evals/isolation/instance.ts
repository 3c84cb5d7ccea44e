import { loadConfig } from "../../src/config.js";
import type { IsolationMutations } from "../../src/db/database.js";
import type { EmbeddingProvider } from "../../src/embeddings/provider.js";
import { buildFence, type FenceInstance } from "../../src/fence.js";
import { createLogger } from "../../src/observability/logger.js";
import { serveOnLoopback } from "../../test/support/harness.js";
import { scratchDatabase } from "../../test/support/scratch-database.js";

/**
 * One Fence under attack: built in-process with the mode's mutations (the only way to weaken a
 * lock) and served on an ephemeral loopback port, so the attacks go through the real HTTP stack.
 * PGlite runs in memory, so every instance starts from an empty database; on Postgres the all-locks
 * instance shares the database with earlier runs (which is why needles carry the run id), and each
 * weakened one gets a scratch database.
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
  // A weakened build on Postgres gets a database of its own: with RLS and the tenant filter both
  // removed it would otherwise read and write the rows of whatever else shares the database.
  const weakened = Object.values(options.mutations).some(Boolean);
  const scratch =
    options.backend.databaseUrl && weakened ? await scratchDatabase(options.backend.databaseUrl, "fence_eval") : undefined;
  const databaseUrl = scratch?.url ?? options.backend.databaseUrl;
  const config = loadConfig({
    FENCE_ADMIN_KEY: adminKey,
    FENCE_DATA_DIR: "memory://",
    LOG_LEVEL: "silent",
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...(options.llmBaseUrl ? { LLM_BASE_URL: options.llmBaseUrl, LLM_MODEL: "fake-echo" } : {}),
  });
  const fence = await buildFence(config, {
    embeddings: options.embeddings,
    mutations: options.mutations,
    logger: createLogger("silent"),
  }).catch(async (error: unknown) => {
    await scratch?.drop();
    throw error;
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
        await scratch?.drop();
      },
    };
  } catch (error) {
    await fence.close();
    await scratch?.drop();
    throw error;
  }
}
