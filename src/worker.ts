import { appliedSchemaVersion, EXPECTED_SCHEMA_VERSION } from "./db/schema-version.js";
import { hasCitus } from "./db/citus.js";
import { postgresDatabase } from "./db/connect-postgres.js";
import { OpenAICompatibleEmbeddings } from "./embeddings/openai-compatible.js";
import { MemoryCounterStore } from "./limits/counter-store.js";
import { createLogger } from "./observability/logger.js";
import { composeFence, type ComposedFence } from "./platform/compose-fence.js";
import { runInBackground, withRequestScope } from "./core/request-scope.js";
import { RequestScopedPool } from "./db/request-scoped-pool.js";
import { StartupRefusal, workerConfig, type WorkerEnv } from "./platform/worker-config.js";

/**
 * Cloudflare Workers entry: the same app as `main.ts` (platform/compose-fence.ts), built once per
 * isolate from bindings, on Postgres through Hyperdrive. What differs from Node, and why:
 * - database: a pg pool per invocation (sockets cannot outlive their request), no migrations here;
 * - embeddings: the OpenAI-compatible provider only, refused at start when none is configured;
 * - jobs: no background loops — the tenant's queued jobs run right after its 202 (ctx.waitUntil),
 *   and the Cron Trigger (`scheduled`) runs what is still due, of every tenant (retries, expired leases);
 * - admission counters and caches: per isolate (see docs/deployment.md, "Deploy on Cloudflare Workers");
 * - no Prometheus or OTel SDK: GET /metrics answers 501 (after its authentication).
 */

/** Jobs one invocation runs after its response, and per cron run (each job is one document). */
const JOBS_AFTER_RESPONSE = 4;
const JOBS_PER_CRON_RUN = 20;
/** Stays inside the 30 s that waitUntil work gets after the response. */
const BACKGROUND_BUDGET_MS = 25_000;

interface ExecutionContextLike {
  waitUntil(promise: Promise<unknown>): void;
}

let building: Promise<ComposedFence> | undefined;

async function build(env: WorkerEnv): Promise<ComposedFence> {
  const config = workerConfig(env);
  // pino's browser build on workerd: JSON lines on console (Workers Logs), masked like on Node (logger.ts).
  const logger = createLogger(config.logLevel);
  const pool = new RequestScopedPool(config.databaseUrl!);
  // On a Citus coordinator every transaction's settings must reach the workers (db/citus.ts).
  const distribution = (await hasCitus(postgresDatabase(pool, async () => undefined))) ? "citus" : "single-node";
  const db = postgresDatabase(pool, async () => undefined, { distribution });
  const applied = await appliedSchemaVersion(db);
  if (applied < EXPECTED_SCHEMA_VERSION) {
    throw new StartupRefusal(
      `The database is not migrated to this build's schema (applied ${applied || "none"}, expected ${EXPECTED_SCHEMA_VERSION}): ` +
        "run `npm run migrate` against it before deploying. Workers never run migrations.",
    );
  }
  if (config.embeddings.provider !== "openai") throw new StartupRefusal("Workers need the OpenAI-compatible embeddings provider.");
  const embeddings = await OpenAICompatibleEmbeddings.connect(config.embeddings);
  const composed = composeFence({
    config,
    db,
    embeddings,
    logger,
    // Per isolate: see the README for why (budgets, the limit that costs money, are in Postgres).
    counters: new MemoryCounterStore(),
    // Run records are written after the response: inside this invocation, before its pool closes.
    keepAlive: (write) => runInBackground(() => write),
    // FENCE_JOB_WORKERS=0: this Worker only queues; the cron sweep or Node instances on the same database run the jobs.
    // After the response, only the requesting tenant's jobs: its invocation's time (and the wait
    // for it) is not spent on other tenants' work, which the Cron Trigger runs as their own.
    onJobQueued:
      config.jobs.workers > 0
        ? (tenantId) =>
            runInBackground(() => composed.jobRunner.runAvailable(JOBS_AFTER_RESPONSE, Date.now() + BACKGROUND_BUDGET_MS, { tenantId }))
        : () => undefined,
  });
  logger.info({ embeddings: embeddings.model, llm: config.llm?.model ?? "none (extractive answers)", runtime: "workers" }, "Fence is ready");
  return composed;
}

/** Built on the first request of an isolate; a failed start is retried on the next request (after `npm run migrate`, say). */
function fenceFor(env: WorkerEnv): Promise<ComposedFence> {
  building ??= build(env).catch((error: unknown) => {
    building = undefined;
    throw error;
  });
  return building;
}

function refusal(error: unknown): Response {
  const known = error instanceof StartupRefusal;
  const message = known ? error.message : "Fence failed to start; see the Worker's logs.";
  console.error(JSON.stringify({ level: 50, service: "fence", msg: "Fence refused to start", reason: known ? error.message : String(error) }));
  return Response.json({ error: { code: "not_configured", message } }, { status: 503 });
}

/** Runs `fn` in a request scope; the response's body, background jobs and the pool end in waitUntil. */
async function scoped(ctx: ExecutionContextLike, fn: () => Promise<Response>): Promise<Response> {
  const scope = withRequestScope(fn);
  let response: Response;
  try {
    response = await scope.result;
  } catch (error) {
    ctx.waitUntil(scope.settle());
    throw error;
  }
  if (!response.body) {
    ctx.waitUntil(scope.settle());
    return response;
  }
  // A streamed body (SSE chat) still reads the database as it goes: settle only once it is done.
  const { readable, writable } = new TransformStream();
  ctx.waitUntil(response.body.pipeTo(writable).catch(() => undefined).then(() => scope.settle()));
  return new Response(readable, response);
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: ExecutionContextLike): Promise<Response> {
    return scoped(ctx, async () => {
      let fence: ComposedFence;
      try {
        fence = await fenceFor(env);
      } catch (error) {
        return refusal(error);
      }
      // The client's address for the repeated-401 security event: Cloudflare sets CF-Connecting-IP
      // itself (a client cannot forge it through the edge); handed over where Node's server puts the socket.
      const peer = { incoming: { socket: { remoteAddress: request.headers.get("cf-connecting-ip") ?? undefined } } };
      return fence.app.fetch(request, { ...env, ...peer }, ctx as never);
    });
  },

  /** Cron Trigger: runs queued jobs that are due (retries, leases of failed invocations). */
  async scheduled(_controller: unknown, env: WorkerEnv, ctx: ExecutionContextLike): Promise<void> {
    const scope = withRequestScope(async () => {
      const fence = await fenceFor(env);
      const ran = await fence.jobRunner.runAvailable(JOBS_PER_CRON_RUN, Date.now() + BACKGROUND_BUDGET_MS);
      if (ran > 0) fence.logger.info({ ran }, "cron ran queued jobs");
    });
    ctx.waitUntil(scope.result.catch((error: unknown) => void refusal(error)).finally(() => scope.settle()));
    await scope.result.catch(() => undefined);
  },
};
