import { and, count, eq, inArray, or, sql } from "drizzle-orm";
import type { IsolationMutations } from "../../src/db/database.js";
import { jobs } from "../../src/db/schema.js";
import type { EmbeddingProvider } from "../../src/embeddings/provider.js";
import type { FenceInstance } from "../../src/platform/fence.js";
import type { SecurityEventKind } from "../../src/observability/security-events.js";
import { startFence as startHarnessedFence } from "../../test/support/fence-harness.js";

/**
 * One Fence under attack: built in-process with the mode's mutations (the only way to weaken a
 * lock) and served on an ephemeral loopback port, so the attacks go through the real HTTP stack.
 * PGlite runs in memory, so every instance starts from an empty database; on Postgres each instance
 * gets a scratch database, dropped when it closes.
 *
 * Job workers: the instance serves HTTP only (FENCE_JOB_WORKERS=0), so queued jobs stay queued
 * while they are attacked; `runJobs` then starts the instance's own workers until they have run
 * (attacks/jobs.ts).
 */
export interface EvalBackend {
  /**
   * `worker`: the attacks go to Fence on workerd (wrangler dev) over Postgres; see worker-instance.ts.
   * `citus`: a Citus cluster's coordinator (CITUS_DATABASE_URL), Fence's tables distributed by tenant.
   */
  name: "pglite" | "postgres" | "citus" | "worker";
  databaseUrl: string | undefined;
}

export interface RunningFence {
  url: string;
  adminKey: string;
  fence: FenceInstance;
  /** Security events of this kind the instance reported so far. */
  securityEventCount(kind: SecurityEventKind): number;
  /** Runs the queued, due jobs of these tenants until none is left queued-and-due or running. */
  runJobs(tenantIds: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export interface InstanceOptions {
  backend: EvalBackend;
  mutations: IsolationMutations;
  embeddings: EmbeddingProvider;
  /** Base URL of the fake OpenAI server; when set, chat runs in LLM mode against it. */
  llmBaseUrl?: string | undefined;
  /** The fake OpenAI server, which the `worker` backend embeds through (Workers cannot run the local model). */
  fakeOpenAIUrl?: string | undefined;
}

/** A per-run admin secret: no fixed credential in the code, and nothing for an attacker to guess. */
export function randomAdminKey(): string {
  return `eval-admin-${crypto.randomUUID()}`;
}

export async function startFence(options: InstanceOptions, adminKey: string): Promise<RunningFence> {
  if (options.backend.name === "worker") {
    const { startWorkerFence } = await import("./worker-instance.js");
    return startWorkerFence(options, adminKey);
  }
  // Every instance on Postgres gets a database of its own: a weakened build would otherwise read
  // and write the rows of whatever else shares the database, and any other instance's job workers
  // there would run the queued jobs the attacks need to find still queued.
  const { fence, url, close } = await startHarnessedFence({
    databaseUrl: options.backend.databaseUrl,
    scratchPrefix: "fence_eval",
    adminKey,
    env: {
      FENCE_JOB_WORKERS: "0",
      // Served as `npm start` serves (Node's request reaches the app, so the client address is
      // known), every attack comes from 127.0.0.1: past 30 bad keys a minute that address would get
      // 429 before any key is checked, hiding the 401 paths the attacks probe. The per-address
      // limit has its own tests (test/integration/tenancy/unknown-keys.test.ts) and the
      // availability section's bogus-key flood.
      FENCE_AUTH_FAILURES_PER_ADDRESS: "1000000",
      // PGlite in-process (not the default) is attacked too: FENCE_PGLITE_THREAD=false npm run eval:isolation.
      ...(process.env.FENCE_PGLITE_THREAD ? { FENCE_PGLITE_THREAD: process.env.FENCE_PGLITE_THREAD } : {}),
      ...(options.llmBaseUrl ? { LLM_BASE_URL: options.llmBaseUrl, LLM_MODEL: "fake-echo" } : {}),
    },
    build: { embeddings: options.embeddings, mutations: options.mutations },
    serve: true,
  });
  return {
    url,
    adminKey,
    fence,
    securityEventCount: (kind) => fence.securityEvents.count(kind),
    runJobs: (tenantIds) => runJobsToTheEnd(fence, tenantIds),
    close,
  };
}

/**
 * Starts the instance's own job workers (as `buildFence` wired them) for one drain, waits until
 * these tenants have nothing queued-and-due or running, and stops them again. On a shared Postgres
 * database the workers may also run jobs queued by other suites, as any instance's workers would.
 */
async function runJobsToTheEnd(fence: FenceInstance, tenantIds: readonly string[], timeoutMs = 60_000): Promise<void> {
  const pending = async () => {
    const [row] = await fence.db.asPlatformAdmin("isolation-eval-jobs", (tx) =>
      tx
        .select({ n: count() })
        .from(jobs)
        .where(
          and(
            inArray(jobs.tenantId, [...tenantIds]),
            or(eq(jobs.status, "running"), and(eq(jobs.status, "queued"), sql`${jobs.runAfter} <= now()`)),
          ),
        ),
    );
    return row?.n ?? 0;
  };
  fence.jobRunner.start(2);
  try {
    const deadline = Date.now() + timeoutMs;
    while ((await pending()) > 0) {
      if (Date.now() > deadline) {
        const states = await fence.db.asPlatformAdmin("isolation-eval-jobs", (tx) =>
          tx
            .select({ status: jobs.status, error: jobs.errorCode, attempts: jobs.attempts, lockedBy: jobs.lockedBy, n: count() })
            .from(jobs)
            .where(inArray(jobs.tenantId, [...tenantIds]))
            .groupBy(jobs.status, jobs.errorCode, jobs.attempts, jobs.lockedBy),
        );
        throw new Error(`jobs still pending after ${timeoutMs} ms: ${JSON.stringify(states)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } finally {
    await fence.jobRunner.stop();
  }
}
