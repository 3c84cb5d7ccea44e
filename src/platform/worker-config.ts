import { ConfigError, loadConfig, type FenceConfig } from "./config.js";

/** The Hyperdrive binding's shape (only what Fence reads of it). */
export interface HyperdriveBinding {
  connectionString: string;
}

/** The Worker's bindings: `HYPERDRIVE`, secrets and vars (wrangler.toml), all strings but the binding. */
export interface WorkerEnv {
  HYPERDRIVE?: HyperdriveBinding;
  [name: string]: unknown;
}

/** Fence cannot serve from this Worker as configured; the reason is safe to show (no secrets in it). */
export class StartupRefusal extends Error {
  override name = "StartupRefusal";
}

/**
 * Workers bindings → the same `FenceConfig` that Node reads from process.env, through the same
 * `loadConfig` (one schema, one set of defaults). The database URL is Hyperdrive's; the embeddings
 * provider is the OpenAI-compatible one, the only one that fits a Worker (the local models need
 * threads, a file system and far more than a Worker bundle may hold).
 */
export function workerConfig(env: WorkerEnv): FenceConfig {
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (typeof value === "string") vars[name] = value;
  const databaseUrl = env.HYPERDRIVE?.connectionString ?? vars.DATABASE_URL;
  if (!databaseUrl) throw new StartupRefusal("No database: bind Hyperdrive as HYPERDRIVE in wrangler.toml.");
  const provider = vars.FENCE_EMBEDDINGS ?? "openai";
  if (provider !== "openai" || !vars.EMBEDDINGS_BASE_URL) {
    throw new StartupRefusal(
      "No OpenAI-compatible embeddings endpoint configured: a Worker cannot run the local models. " +
        "Set EMBEDDINGS_BASE_URL (any /v1/embeddings endpoint), EMBEDDINGS_MODEL and the EMBEDDINGS_API_KEY secret.",
    );
  }
  try {
    return loadConfig({ ...vars, FENCE_EMBEDDINGS: "openai", DATABASE_URL: databaseUrl });
  } catch (error) {
    if (error instanceof ConfigError) throw new StartupRefusal(error.message);
    throw error;
  }
}
