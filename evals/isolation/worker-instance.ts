import { and, count, eq, inArray, or, sql } from "drizzle-orm";
import { jobs } from "../../src/db/schema.js";
import { startFence } from "../../test/support/fence-harness.js";
import { startWorker } from "../../test/support/worker-process.js";
import type { InstanceOptions, RunningFence } from "./instance.js";

/**
 * The eval's `worker` backend: the attacks go over HTTP to Fence on workerd (`wrangler dev`), on a
 * scratch Postgres database migrated by `npm run migrate`'s code, embedding through the eval's
 * OpenAI-compatible fake. Only mode 1 (all locks on): the weakened-lock modes are in-process hooks
 * (IsolationMutations) that a Worker built from bindings does not have, on purpose.
 *
 * `fence` is a Node instance on the same database with no job workers, for what the eval reads as
 * the owner (seeded truth, data versions, usage). Security events happen in the Worker, so they
 * are counted from its log lines. The Worker only queues jobs (FENCE_JOB_WORKERS=0), so the job
 * attacks find them queued; `runJobs` fires its Cron Trigger until they have run.
 */
const EMBEDDING_MODEL = "fake-embed";
const DIMENSIONS = 64;

export async function startWorkerFence(options: InstanceOptions, adminKey: string): Promise<RunningFence> {
  if (!options.backend.databaseUrl || !options.fakeOpenAIUrl) throw new Error("the worker backend needs DATABASE_URL and the fake OpenAI server");
  if (Object.values(options.mutations).some(Boolean)) throw new Error("the worker backend runs mode 1 only (mutations are in-process hooks)");
  const embeddingEnv = { EMBEDDINGS_BASE_URL: options.fakeOpenAIUrl, EMBEDDINGS_MODEL: EMBEDDING_MODEL, EMBEDDINGS_DIMENSIONS: String(DIMENSIONS) };
  const llmEnv: Record<string, string> = options.llmBaseUrl ? { LLM_BASE_URL: options.llmBaseUrl, LLM_MODEL: "fake-echo" } : {};
  const worker = await startWorker({
    databaseUrl: options.backend.databaseUrl,
    // warn: security events (level 45) are logged, ordinary request lines are not.
    // Every attack comes from one address, which workerd reports (CF-Connecting-IP) where the Node
    // backends' in-process requests have none: past 30 bad keys a minute it would get 429 before any
    // key is checked, hiding the 401 paths the attacks probe. The per-address limit has its own
    // tests (test/integration/tenancy/unknown-keys.test.ts).
    vars: { FENCE_ADMIN_KEY: adminKey, LOG_LEVEL: "warn", FENCE_JOB_WORKERS: "0", FENCE_AUTH_FAILURES_PER_ADDRESS: "1000000", ...embeddingEnv, ...llmEnv },
    embeddings: { model: EMBEDDING_MODEL, dimensions: DIMENSIONS },
  });
  try {
    const { fence, close } = await startFence({
      databaseUrl: worker.databaseUrl,
      adminKey,
      env: { FENCE_JOB_WORKERS: "0", FENCE_EMBEDDINGS: "openai", ...embeddingEnv },
    });
    const pending = async (tenantIds: readonly string[]) => {
      const [row] = await fence.db.asPlatformAdmin("isolation-eval-jobs", (tx) =>
        tx
          .select({ n: count() })
          .from(jobs)
          .where(and(inArray(jobs.tenantId, [...tenantIds]), or(eq(jobs.status, "running"), and(eq(jobs.status, "queued"), sql`${jobs.runAfter} <= now()`)))),
      );
      return row?.n ?? 0;
    };
    return {
      url: worker.url,
      adminKey,
      fence,
      securityEventCount: (kind) => worker.output().split(`"security_event":"${kind}"`).length - 1,
      async runJobs(tenantIds) {
        const deadline = Date.now() + 60_000;
        while ((await pending(tenantIds)) > 0) {
          if (Date.now() > deadline) throw new Error("jobs still pending after 60 s of cron runs on the Worker");
          const res = await fetch(`${worker.url}/cdn-cgi/handler/scheduled`);
          if (!res.ok) throw new Error(`cron trigger: ${res.status}`);
        }
      },
      async close() {
        await close();
        await worker.stop();
      },
    };
  } catch (error) {
    await worker.stop();
    throw error;
  }
}
