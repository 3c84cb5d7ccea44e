import type { RefusedReads } from "../flow/refused-reads.js";
import type { TenantCaches } from "../cache/tenant-caches.js";
import type { ChatService } from "../chat/chat-service.js";
import type { Database } from "../db/database.js";
import type { EmbeddingProvider } from "../embeddings/provider.js";
import type { DocumentParser } from "../ingest/document-parser.js";
import type { DocumentIngestor } from "../ingest/ingest-document.js";
import type { DocumentStore } from "../ingest/document-store.js";
import type { JobQueue } from "../jobs/job-queue.js";
import type { JobRunner } from "../jobs/job-runner.js";
import type { AdmissionController } from "../limits/admission.js";
import type { BudgetGuard } from "../metering/budget-guard.js";
import type { UsageReports } from "../metering/usage-report.js";
import type { Logger } from "../observability/logger.js";
import type { SecurityEvents } from "../observability/security-events.js";
import type { Tracing } from "../observability/tracing.js";
import type { PlanAdmin } from "../plans/plan-admin.js";
import type { OwnerSettings } from "../plans/owner-settings.js";
import type { Retriever } from "../retrieval/retriever.js";
import type { EvalCases } from "../runs/eval-cases.js";
import type { RunRecords } from "../runs/run-records.js";
import type { RunRetentionSweep } from "../runs/retention-sweep.js";
import type { TenantAdmin } from "../tenancy/tenant-admin.js";
import type { TenantKeys } from "../tenancy/tenant-keys.js";
import type { KeyUseRecorder } from "../tenancy/key-use.js";
import type { AuditLog } from "../audit/audit-log.js";
import type { AccessLog } from "./access-log.js";
import type { RequestMetricsSink } from "./middleware/http-metrics.js";
import type { RefusalsOnRecord } from "./refusals-on-record.js";
import type { TenantAuthGuards } from "./middleware/tenant-auth.js";
import type { MetricsExposition } from "./routes/metrics.js";

/** The request limits the HTTP layer enforces (FENCE_MAX_BODY_BYTES, FENCE_SEARCH_MAX_K, …). */
export interface HttpLimits {
  maxBodyBytes: number;
  searchMaxK: number;
  asyncIngestBytes: number;
  batchMaxDocuments: number;
  maxTextChars: number;
}

/**
 * Every service of one Fence, declared once. platform/compose-fence.ts builds it for both runtimes
 * (Node and Workers); the HTTP app hands it to each route, which names what it reads with
 * `Pick<FenceServices, …>`; the runtime runs the job loops in it. Declared here, in the HTTP layer,
 * because http may not import platform (the floor above it). Types only: nothing here is loaded
 * by the Worker bundle, and prom-client and the OTel SDK stay behind interfaces.
 * A new service is one member here and one line in composeFence.
 */
export interface FenceServices {
  // Storage
  db: Database;
  caches: TenantCaches;
  embeddings: EmbeddingProvider;

  // Tenants, plans and what they may spend
  tenantAdmin: TenantAdmin;
  /** A tenant's own keys, managed with an owner key (POST/GET/DELETE /v1/keys, rotate). */
  tenantKeys: TenantKeys;
  ownerSettings: OwnerSettings;
  /** Queued `last_used_at` writes of this instance (flushed on close). */
  keyUse: KeyUseRecorder;
  /** The append-only trail of key, tenant, configuration and plan changes. */
  auditLog: AuditLog;
  /** What keeps hostile keys cheap to refuse: the key directory and the failed-authentication limit per address. */
  tenantAuthGuards: TenantAuthGuards;
  planAdmin: PlanAdmin;
  budgets: BudgetGuard;
  usageReports: UsageReports;
  admission: AdmissionController;
  /** Where refused connections wait to be read again (Node; absent in the FIFO baseline). */
  refusedReads?: RefusedReads | undefined;
  /** Refusals answered from memory (where keys are kept verified in memory: Node). */
  refusalsOnRecord?: RefusalsOnRecord | undefined;

  // Documents and the jobs that ingest them
  documents: DocumentStore;
  /** Where tenants' bytes are parsed: uploads, and large JSON bodies (Node: parse threads). */
  parser: DocumentParser;
  ingestor: DocumentIngestor;
  jobs: JobQueue;
  /** Job workers, not started: the runtime decides (loops on Node, bounded batches on Workers). */
  jobRunner: JobRunner;

  // Questions
  retriever: Retriever;
  chat: ChatService;
  /** The providers' lanes (the LLM's, a remote embedding model's): depth and breaker, for the platform's console page. */
  providerLanes: readonly NonNullable<EmbeddingProvider["lane"]>[];

  // Run records (GET /v1/runs, POST /v1/evals/cases) and the sweep that ends them (started by Node)
  runs: RunRecords;
  evalCases: EvalCases;
  runRetention: RunRetentionSweep;

  // Observability
  logger: Logger;
  securityEvents: SecurityEvents;
  /** One access line a request, refusals sampled; shared by the app and the Node front door. */
  accessLog: AccessLog;
  /** Prometheus metrics on Node (GET /metrics); on Workers a stand-in that answers 501. */
  metrics: MetricsExposition & RequestMetricsSink;
  /** OpenTelemetry, when OTEL_EXPORTER_OTLP_ENDPOINT is set (Node only). */
  tracing: Tracing | undefined;

  // Who may reach the platform endpoints, and the request limits
  /** FENCE_ADMIN_KEY; none disables the admin API. */
  adminKey: string | undefined;
  /** FENCE_METRICS_TOKEN: a scrape-only secret, so Prometheus need not hold the admin key. */
  metricsToken: string | undefined;
  limits: HttpLimits;
}
