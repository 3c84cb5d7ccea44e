import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Redis } from "ioredis";
import { createApp } from "./app.js";
import { RedisCacheBackend } from "./cache/redis-cache-backend.js";
import { TenantCaches } from "./cache/tenant-caches.js";
import { ChatService } from "./chat/chat-service.js";
import { LlmClient } from "./chat/llm-client.js";
import type { FenceConfig } from "./config.js";
import { connectDatabase } from "./db/connect.js";
import type { Database, IsolationMutations } from "./db/database.js";
import { runMigrations } from "./db/migrate.js";
import { ensureVectorIndex } from "./db/vector-index.js";
import { createEmbeddingProvider } from "./embeddings/create-provider.js";
import type { EmbeddingProvider } from "./embeddings/provider.js";
import type { AppEnv } from "./http/types.js";
import { DocumentStore } from "./ingest/document-store.js";
import { DocumentIngestor } from "./ingest/ingest-document.js";
import { INGEST_DOCUMENT_JOB, IngestJobHandler } from "./ingest/ingest-job.js";
import { FairScheduler } from "./jobs/fair-scheduler.js";
import { JobQueue } from "./jobs/job-queue.js";
import { JobRunner } from "./jobs/job-runner.js";
import type { QueueDiscipline } from "./limits/fair-queue.js";
import { AdmissionController } from "./limits/admission.js";
import { BudgetGuard } from "./limits/budget-guard.js";
import { MemoryCounterStore, RedisCounterStore } from "./limits/counter-store.js";
import { ProviderLane } from "./limits/provider-lane.js";
import { UsageReports } from "./metering/usage-report.js";
import { PlanAdmin } from "./plans/plan-admin.js";
import { createLogger, type Logger } from "./observability/logger.js";
import { SecurityEvents } from "./observability/security-events.js";
import { FenceMetrics } from "./observability/metrics.js";
import { startTracing, type Tracing } from "./observability/tracing.js";
import { readQueueDepth } from "./jobs/queue-depth.js";
import { connectRedis } from "./redis.js";
import { Retriever } from "./retrieval/retriever.js";
import { TenantAdmin } from "./tenancy/tenant-admin.js";
import { EvalCases } from "./runs/eval-cases.js";
import { JobRunRecorder } from "./runs/job-runs.js";
import { RunRecords } from "./runs/run-records.js";
import { RunRetentionSweep } from "./runs/retention-sweep.js";
import { RunStore } from "./runs/run-store.js";

export interface FenceInstance {
  app: OpenAPIHono<AppEnv>;
  db: Database;
  embeddings: EmbeddingProvider;
  securityEvents: SecurityEvents;
  /** Prometheus metrics of this instance (its own registry), served at GET /metrics. */
  metrics: FenceMetrics;
  /** OpenTelemetry tracing, when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  tracing: Tracing | undefined;
  caches: TenantCaches;
  budgets: BudgetGuard;
  retriever: Retriever;
  logger: Logger;
  jobs: JobQueue;
  /** This instance's job workers (started with FENCE_JOB_WORKERS of them). */
  jobRunner: JobRunner;
  /** Run records: every chat and ingestion with its steps (and the retention sweep that ends them). */
  runs: RunRecords;
  runRetention: RunRetentionSweep;
  close(): Promise<void>;
}

export interface BuildOptions {
  /** Reuse an already-loaded provider (tests and benchmarks share one model across instances). */
  embeddings?: EmbeddingProvider;
  logger?: Logger;
  /** Isolation eval only: weakened locks, injected in code (see IsolationMutations). */
  mutations?: IsolationMutations;
  /**
   * How queued work is ordered in the job scheduler and the provider lanes. `fifo` exists only
   * as the noisy-neighbour benchmark's baseline; it is not configurable from the environment.
   */
  scheduling?: QueueDiscipline;
  /** Benchmarks only: `false` stores no run records (the overhead baseline); reads still work. */
  recordRuns?: boolean;
}

/**
 * The composition root: database → migrations → model → services → app. `main.ts`, the tests,
 * the isolation eval and the benchmarks all build Fence through here, so they run the same wiring.
 */
export async function buildFence(config: FenceConfig, options: BuildOptions = {}): Promise<FenceInstance> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const db = await connectDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.databasePoolSize,
    mutations: options.mutations,
  });
  let redis: Redis | undefined;
  try {
    // Connected first, so that a wrong REDIS_URL stops start-up before the model is loaded.
    redis = config.redisUrl ? await connectRedis(config.redisUrl, logger) : undefined;
    const applied = await runMigrations(db);
    if (applied > 0) logger.info({ applied }, "database migrations applied");
    const embeddings = options.embeddings ?? (await createEmbeddingProvider(config.embeddings));
    await ensureVectorIndex(db, embeddings.model, embeddings.dimensions);

    const metrics = new FenceMetrics({ topTenants: config.metrics.topTenants, logger });
    const llmLane = config.llm ? new ProviderLane("llm", { ...config.llm.lane, discipline: options.scheduling }) : undefined;
    for (const lane of [llmLane, embeddings.lane]) if (lane) metrics.watchLane(lane);
    metrics.watchJobQueue(() => readQueueDepth(db));
    const tracing = config.tracing.endpoint ? await startTracing({ endpoint: config.tracing.endpoint, serviceName: config.tracing.serviceName }) : undefined;
    const securityEvents = new SecurityEvents(logger, { onReport: metrics.securityEvent, trustedProxyHops: config.trustedProxyHops });
    let cacheWarnedAt = 0;
    const caches = new TenantCaches(config.cacheEntries, redis ? new RedisCacheBackend(redis) : undefined, (error) => {
      if (Date.now() - cacheWarnedAt < 60_000) return; // once a minute is enough while Redis is down
      cacheWarnedAt = Date.now();
      logger.warn({ err: error }, "shared cache unavailable; treated as a miss");
    }, metrics.cacheLookup);
    const counters = redis ? new RedisCounterStore(redis) : new MemoryCounterStore();
    const admission = new AdmissionController(counters, { maxInFlight: config.maxInFlight }, logger);
    const budgets = new BudgetGuard(db, config.internalMicrosPerMTok, admission, metrics.usageCharged);
    // Run records (runs/): written by chat, uploads and job attempts; swept after the retention period.
    const runStore = new RunStore(db);
    const runs = new RunRecords(runStore, logger, options.recordRuns ?? true);
    const runRetention = new RunRetentionSweep(runStore, logger, { retentionDays: config.runRetentionDays, intervalMs: 60 * 60 * 1000 });
    const retriever = new Retriever(db, embeddings, caches, securityEvents, budgets, { efSearch: config.retrieval.hnswEfSearch });
    const chat = new ChatService(db, retriever, caches, securityEvents, budgets, config.llm && llmLane ? new LlmClient(config.llm, llmLane) : undefined, {
      k: 8,
      minRelevance: config.retrieval.minRelevance,
      maxPassages: 6,
      maxContextChars: 6000,
      provider: config.llm?.provider ?? "none",
      fallbackModel: config.llm?.fallbackModel,
      maxOutputTokens: config.llm?.maxOutputTokens ?? 0,
    }, runs);
    const ingestor = new DocumentIngestor(db, embeddings, budgets, { maxTextChars: config.limits.maxTextChars });
    const scheduler = new FairScheduler(db, {
      leaseMs: config.jobs.leaseMs,
      discipline: options.scheduling,
      capabilities: [embeddings.model],
    });
    const runner = new JobRunner(db, scheduler, [new IngestJobHandler(ingestor)], logger, config.jobs, metrics.jobs);
    runner.recordAttemptsWith(new JobRunRecorder(runs, { [INGEST_DOCUMENT_JOB]: "ingest" }, { provider: embeddings.model.split(":")[0]!, model: embeddings.model }));
    const jobQueue = new JobQueue(db, () => runner.wake());
    const app = createApp({
      db,
      logger,
      securityEvents,
      tenantAdmin: new TenantAdmin(db, caches),
      ingestor,
      jobQueue,
      budgets,
      planAdmin: new PlanAdmin(db),
      usageReports: new UsageReports(db),
      admission,
      documents: new DocumentStore(db),
      retriever,
      chat,
      embeddingModel: embeddings.model,
      adminKey: config.adminKey,
      runs: { records: runs, cases: new EvalCases(db, runStore) },
      metrics: { registry: metrics, token: config.metrics.token },
      tracing,
      limits: config.limits,
    });
    runner.start();
    runRetention.start();
    return {
      app,
      db,
      embeddings,
      securityEvents,
      metrics,
      tracing,
      caches,
      budgets,
      retriever,
      logger,
      jobs: jobQueue,
      jobRunner: runner,
      runs,
      runRetention,
      async close() {
        await runner.stop();
        await tracing?.shutdown();
        await runRetention.stop();
        await counters.close();
        await redis?.quit().catch(() => undefined);
        await db.close();
        if (!options.embeddings) await embeddings.close?.();
      },
    };
  } catch (error) {
    redis?.disconnect();
    await db.close();
    throw error;
  }
}
