import type { OpenAPIHono } from "@hono/zod-openapi";
import { createApp } from "../http/app.js";
import { AccessLog } from "../http/access-log.js";
import { FrontDoor } from "../http/front-door.js";
import { RefusalsOnRecord } from "../http/refusals-on-record.js";
import { TenantCaches, type SharedCacheBackend } from "../cache/tenant-caches.js";
import { ChatService } from "../chat/chat-service.js";
import { LlmClient } from "../chat/llm-client.js";
import type { FenceConfig } from "./config.js";
import type { ChangeFeed } from "../db/change-feed.js";
import type { Database } from "../db/database.js";
import type { EmbeddingProvider } from "../embeddings/provider.js";
import { NotAvailableOnRuntimeError } from "../core/errors.js";
import type { RequestMetricsSink } from "../http/middleware/http-metrics.js";
import type { MetricsExposition } from "../http/routes/metrics.js";
import type { FenceServices } from "../http/services.js";
import type { AppEnv } from "../http/types.js";
import { DocumentStore } from "../ingest/document-store.js";
import { INLINE_PARSE_MAX_BYTES, InlineDocumentParser, type DocumentParser } from "../ingest/document-parser.js";
import { DocumentIngestor } from "../ingest/ingest-document.js";
import { IngestJobHandler } from "../ingest/ingest-job.js";
import { FairScheduler } from "../jobs/fair-scheduler.js";
import { JobQueue } from "../jobs/job-queue.js";
import { JobRunner } from "../jobs/job-runner.js";
import { readQueueDepth } from "../jobs/queue-depth.js";
import { AdmissionController } from "../limits/admission.js";
import { RefusedReads } from "../flow/refused-reads.js";
import type { CounterStore } from "../limits/counter-store.js";
import type { QueueDiscipline } from "../flow/fair-queue.js";
import { BudgetGuard } from "../metering/budget-guard.js";
import { ProviderLane } from "../flow/provider-lane.js";
import { UsageReports } from "../metering/usage-report.js";
import type { Logger } from "../observability/logger.js";
// Types only: prom-client and the OTel SDK are loaded by the Node entry, never by this module.
import type { FenceMetrics } from "../observability/metrics.js";
import type { Tracing } from "../observability/tracing.js";
import { SecurityEvents } from "../observability/security-events.js";
import { PlanAdmin } from "../plans/plan-admin.js";
import { Retriever } from "../retrieval/retriever.js";
import { EvalCases } from "../runs/eval-cases.js";
import { RunRecords } from "../runs/run-records.js";
import { RunRetentionSweep } from "../runs/retention-sweep.js";
import { RunStore } from "../runs/run-store.js";
import { FailedAuthLimiter } from "../tenancy/failed-auth-limiter.js";
import { KeyDirectory } from "../tenancy/key-directory.js";
import { VerifiedKeyCache } from "../tenancy/verified-key-cache.js";
import { AuditLog } from "../audit/audit-log.js";
import { OwnerSettings } from "../plans/owner-settings.js";
import { consoleRoutes } from "../console/console-app.js";
import { KeyUseRecorder } from "../tenancy/key-use.js";
import { TenantKeys } from "../tenancy/tenant-keys.js";
import { TenantAdmin } from "../tenancy/tenant-admin.js";

/**
 * What a runtime hands over, already made: the platform-neutral half of the composition root.
 * Node (fence.ts) connects PGlite or a pg pool, loads the model, Redis, prom-client and OTel;
 * Workers (worker.ts) bring a per-request pg pool over Hyperdrive and an HTTP embeddings provider.
 * Nothing here opens a socket, a file or a thread, or starts a timer.
 */
export interface FenceDependencies {
  config: FenceConfig;
  db: Database;
  embeddings: EmbeddingProvider;
  logger: Logger;
  /** Admission counters (in memory, Redis, …); every key is built tenant-first by AdmissionController. */
  counters: CounterStore;
  /** A second cache level shared by instances (Redis on Node); none keeps caches per instance. */
  sharedCache?: { backend: SharedCacheBackend; onError: (error: unknown) => void } | undefined;
  /** Prometheus metrics (Node); absent on Workers, where GET /metrics answers 501 to whoever may scrape it. */
  metrics?: FenceMetrics | undefined;
  tracing?: Tracing | undefined;
  /** Called when a job is queued by this instance (Node wakes its own workers; Workers run it in waitUntil). */
  onJobQueued?: (tenantId: string) => void;
  scheduling?: QueueDiscipline | undefined;
  recordRuns?: boolean | undefined;
  /** Where uploads are parsed (Node: worker threads); none parses inline, size-capped (Workers). */
  parser?: DocumentParser | undefined;
  /**
   * Key, tenant and plan changes announced by the database (drizzle/0011); with it, verified keys
   * are kept in memory. Node has one (PGlite in-process, Postgres LISTEN); Workers do not.
   */
  keyChanges?: ChangeFeed | undefined;
  /** Keeps work that outlives its response alive (Workers: ctx.waitUntil); Node needs nothing. */
  keepAlive?: ((work: Promise<void>) => void) | undefined;
}

/** The services and the app over them: what both runtimes get from the composition root. */
export interface ComposedFence extends FenceServices {
  app: OpenAPIHono<AppEnv>;
  /** Node's request listener goes behind it (platform/serve-node.ts); absent without verified keys in memory. */
  frontDoor: FrontDoor | undefined;
}

/** Without a metrics registry: /metrics keeps its authentication (401 for tenants), then answers 501. */
const METRICS_UNAVAILABLE: MetricsExposition & RequestMetricsSink = {
  contentType: "text/plain",
  render: () => Promise.reject(new NotAvailableOnRuntimeError("GET /metrics (Prometheus)", "this runtime (Cloudflare Workers)")),
  observeRequest: () => undefined,
};

/**
 * The one composition root: dependencies the runtime made → services → app. Shared by Node
 * (fence.ts) and Workers (worker.ts), so both serve the same app over the same services.
 */
export function composeFence(deps: FenceDependencies): ComposedFence {
  const { config, db, embeddings, logger, metrics } = deps;
  const llmLane = config.llm ? new ProviderLane("llm", { ...config.llm.lane, discipline: deps.scheduling }) : undefined;
  if (metrics) {
    for (const lane of [llmLane, embeddings.lane]) if (lane) metrics.watchLane(lane);
    metrics.watchJobQueue(() => readQueueDepth(db));
  }
  const securityEvents = new SecurityEvents(logger, { onReport: metrics?.securityEvent, trustedProxyHops: config.trustedProxyHops });
  // Verified keys in memory, where the runtime delivers the database's change feed (Node).
  const verifiedKeys = deps.keyChanges ? new VerifiedKeyCache(deps.keyChanges) : undefined;
  const caches = new TenantCaches(config.cacheEntries, deps.sharedCache?.backend, deps.sharedCache?.onError, metrics?.cacheLookup, (tenantId) =>
    verifiedKeys?.forget(`tenant:${tenantId}`),
  );
  const admission = new AdmissionController(
    deps.counters,
    {
      maxInFlight: config.maxInFlight,
      maxInService: config.maxInService,
      maxWaitingPerTenant: config.maxWaitingPerTenant,
      maxLargeBodies: config.maxLargeBodies,
      maxLargeBodiesPerTenant: config.maxLargeBodiesPerTenant,
      largeBodyPace: config.largeBodyPace,
      discipline: deps.scheduling,
    },
    logger,
  );
  metrics?.watchGate("seat", admission.seats);
  metrics?.watchGate("large_body", admission.largeBodies);
  // Refused connections are read again at low priority; refusals may fill the loop to half busy
  // while admitted work is about (docs/limits-and-fairness.md). The FIFO baseline holds none.
  const refusedReads =
    deps.scheduling === "fifo"
      ? undefined
      : new RefusedReads({ busy: () => admission.seats.activeWithin(1000), perTurn: 4, targetUtilization: 0.5, intervalMs: 10 });
  if (refusedReads) metrics?.watchRefusedReads(refusedReads);
  const budgets = new BudgetGuard(db, config.internalMicrosPerMTok, admission, metrics?.usageCharged);
  // Run records (runs/): written by chat, uploads and job attempts; swept after the retention period.
  const runStore = new RunStore(db);
  const runs = new RunRecords(runStore, logger, deps.recordRuns ?? true, deps.keepAlive);
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
  const parser = deps.parser ?? new InlineDocumentParser({ maxTextChars: config.limits.maxTextChars, maxBytes: INLINE_PARSE_MAX_BYTES });
  const ingestor = new DocumentIngestor(db, embeddings, budgets, { maxTextChars: config.limits.maxTextChars }, parser, caches);
  const scheduler = new FairScheduler(db, {
    leaseMs: config.jobs.leaseMs,
    discipline: deps.scheduling,
    capabilities: [embeddings.model],
  });
  // Each ingest job attempt is recorded as an ingest run by its handler, like an upload in its request.
  const jobRunner = new JobRunner(db, scheduler, [new IngestJobHandler(ingestor, runs)], logger, config.jobs, metrics?.jobs);
  // Unknown keys are refused from memory, and an address that keeps failing is refused before its key is read.
  const keyDirectory = new KeyDirectory(db);
  const failedAuth = new FailedAuthLimiter(
    deps.counters.rateLimiter("auth-failures", config.authFailures.perAddress, config.authFailures.windowSec),
    config.authFailures.perAddress,
    (error) => logger.warn({ err: error }, "failed-authentication limiter unavailable; not limiting"),
  );
  const keyUse = new KeyUseRecorder(db, (error) => logger.warn({ err: error }, "could not record keys' last use; retried at their next use"), deps.keepAlive);
  const services: FenceServices = {
    db,
    caches,
    embeddings,
    tenantAdmin: new TenantAdmin(db, caches, keyDirectory, verifiedKeys),
    tenantKeys: new TenantKeys(db, keyDirectory, verifiedKeys, keyUse),
    keyUse,
    auditLog: new AuditLog(db),
    tenantAuthGuards: { directory: keyDirectory, cache: verifiedKeys, failedAuth, keyUse },
    planAdmin: new PlanAdmin(db, verifiedKeys),
    ownerSettings: new OwnerSettings(db),
    budgets,
    usageReports: new UsageReports(db),
    admission,
    refusedReads,
    refusalsOnRecord: verifiedKeys ? new RefusalsOnRecord(admission, verifiedKeys, keyDirectory, failedAuth) : undefined,
    documents: new DocumentStore(db, caches),
    parser,
    ingestor,
    jobs: new JobQueue(db, deps.onJobQueued ?? (() => jobRunner.wake())),
    jobRunner,
    retriever,
    chat,
    providerLanes: [llmLane, embeddings.lane].filter((lane) => lane !== undefined),
    runs,
    evalCases: new EvalCases(db, runStore),
    runRetention,
    logger,
    securityEvents,
    accessLog: new AccessLog(logger),
    metrics: metrics ?? METRICS_UNAVAILABLE,
    tracing: deps.tracing,
    adminKey: config.adminKey,
    metricsToken: config.metrics.token,
    limits: config.limits,
  };
  const app = createApp(services);
  app.route("/console", consoleRoutes(services, { secret: config.consoleSecret }));
  const frontDoor = services.refusalsOnRecord
    ? new FrontDoor({
        app,
        onRecord: services.refusalsOnRecord,
        runs,
        metrics: services.metrics,
        accessLog: services.accessLog,
        refusedReads,
        trustedProxyHops: config.trustedProxyHops,
      })
    : undefined;
  return { ...services, app, frontDoor };
}
