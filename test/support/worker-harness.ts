import type { FenceConfig } from "../../src/platform/config.js";
import type { FenceInstance } from "../../src/platform/fence.js";
import { startFence } from "./fence-harness.js";
import { ADMIN_KEY, type Backend } from "./harness.js";
import { startWorker, type WorkerProcess } from "./worker-process.js";

/**
 * The Worker side of the shared contract suites (backend `worker` in harness.ts): requests go over
 * HTTP to Fence on workerd; `fence` is a Node instance on the Worker's own scratch database, with
 * no job workers, used only for what the suites check as the database owner (row counts).
 * Both embed through the same OpenAI-compatible fake (FENCE_CONTRACT_EMBEDDINGS_URL), with one model.
 */
export const WORKER_EMBEDDING_MODEL = "fake-embed";
const DIMENSIONS = 64;

export async function startWorkerFence(
  backend: Backend,
  env: Record<string, string>,
): Promise<{ fence: FenceInstance; config: FenceConfig; worker: WorkerProcess }> {
  const embeddingsUrl = process.env.FENCE_CONTRACT_EMBEDDINGS_URL;
  if (!backend.databaseUrl || !embeddingsUrl) throw new Error("the worker backend needs DATABASE_URL and FENCE_CONTRACT_EMBEDDINGS_URL");
  const embeddingEnv = { EMBEDDINGS_BASE_URL: embeddingsUrl, EMBEDDINGS_MODEL: WORKER_EMBEDDING_MODEL, EMBEDDINGS_DIMENSIONS: String(DIMENSIONS) };
  const worker = await startWorker({
    databaseUrl: backend.databaseUrl,
    vars: { ...env, ...embeddingEnv },
    embeddings: { model: WORKER_EMBEDDING_MODEL, dimensions: DIMENSIONS },
  });
  try {
    const { fence, config } = await startFence({
      databaseUrl: worker.databaseUrl,
      adminKey: ADMIN_KEY,
      env: { ...env, ...embeddingEnv, FENCE_EMBEDDINGS: "openai", FENCE_JOB_WORKERS: "0" },
    });
    return { fence, config, worker };
  } catch (error) {
    await worker.stop();
    throw error;
  }
}
