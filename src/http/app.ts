import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import type { ChatService } from "../chat/chat-service.js";
import type { Database } from "../db/database.js";
import type { AdmissionController } from "../limits/admission.js";
import type { BudgetGuard } from "../metering/budget-guard.js";
import type { DocumentIngestor } from "../ingest/ingest-document.js";
import type { DocumentStore } from "../ingest/document-store.js";
import type { JobQueue } from "../jobs/job-queue.js";
import { PayloadTooLargeError } from "../core/errors.js";
import { renderDocsPage } from "./docs-page.js";
import { handleError, handleNotFound } from "./error-handler.js";
import type { MiddlewareHandler } from "hono";
import { adminAuth } from "./middleware/admin-auth.js";
import { admission } from "./middleware/admission.js";
import { httpMetrics, type RequestMetricsSink } from "./middleware/http-metrics.js";
import { httpTracing } from "./middleware/http-tracing.js";
import type { RequestTracer } from "../observability/tracing.js";
import { metricsRoutes, type MetricsExposition } from "./routes/metrics.js";
import { requestContext } from "./middleware/request-context.js";
import { uploadPrecount } from "./middleware/upload-precount.js";
import { tenantAuth, type TenantAuthGuards } from "./middleware/tenant-auth.js";
import { recordAdmissionRefusals } from "./middleware/run-refusals.js";
import { adminRunRoutes, runRoutes } from "./routes/runs.js";
import type { EvalCases } from "../runs/eval-cases.js";
import type { RunRecords } from "../runs/run-records.js";
import { adminRoutes } from "./routes/admin.js";
import { adminPlanRoutes } from "./routes/admin-plans.js";
import { documentRoutes } from "./routes/documents.js";
import { jobRoutes } from "./routes/jobs.js";
import { limitsRoutes } from "./routes/limits.js";
import { operationsRoutes } from "./routes/operations.js";
import { retrievalRoutes } from "./routes/retrieval.js";
import { adminUsageRoutes, tenantUsageRoutes } from "./routes/usage.js";
import { validationHook } from "./routes/validation-hook.js";
import type { AppEnv } from "./types.js";
import type { UsageReports } from "../metering/usage-report.js";
import type { Logger } from "../observability/logger.js";
import type { SecurityEvents } from "../observability/security-events.js";
import type { PlanAdmin } from "../plans/plan-admin.js";
import type { Retriever } from "../retrieval/retriever.js";
import type { TenantAdmin } from "../tenancy/tenant-admin.js";

/** Everything the HTTP layer needs, built explicitly by the entry point (no module singletons). */
export interface FenceServices {
  db: Database;
  logger: Logger;
  securityEvents: SecurityEvents;
  tenantAdmin: TenantAdmin;
  ingestor: DocumentIngestor;
  documents: DocumentStore;
  jobQueue: JobQueue;
  retriever: Retriever;
  chat: ChatService;
  budgets: BudgetGuard;
  planAdmin: PlanAdmin;
  admission: AdmissionController;
  usageReports: UsageReports;
  embeddingModel: string;
  adminKey: string | undefined;
  /** Run records and eval cases (GET /v1/runs, POST /v1/evals/cases); optional. */
  runs?: { records: RunRecords; cases: EvalCases } | undefined;
  /** Prometheus metrics and the scrape token besides the admin key (GET /metrics); optional. */
  metrics?: { registry: MetricsExposition & RequestMetricsSink; token: string | undefined } | undefined;
  /** OpenTelemetry request spans, when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  tracing?: RequestTracer | undefined;
  limits: { maxBodyBytes: number; searchMaxK: number; asyncIngestBytes: number; batchMaxDocuments: number; maxTextChars: number };
  /** What keeps hostile keys cheap to refuse: the key directory and the failed-authentication limit per address. */
  tenantAuthGuards?: TenantAuthGuards | undefined;
}

export function createApp(services: FenceServices): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.use("*", requestContext(services.logger, services.securityEvents));
  app.onError(handleError);
  app.notFound(handleNotFound);
  if (services.tracing) app.use("*", httpTracing(services.tracing));
  if (services.metrics) {
    app.use("*", httpMetrics(services.metrics.registry));
    app.route("/", metricsRoutes(services.metrics.registry, { adminKey: services.adminKey, metricsToken: services.metrics.token }));
  }

  app.route("/", operationsRoutes(services.db, services.embeddingModel));

  const limitBody = bodyLimit({
    maxSize: services.limits.maxBodyBytes,
    onError: () => {
      throw new PayloadTooLargeError(services.limits.maxBodyBytes);
    },
  });
  app.use("/v1/*", limitBody);
  // Uploads are counted in their raw bytes before anything parses them (tenant auth reads JSON bodies).
  const precount = uploadPrecount(services.limits);
  app.use("/v1/documents", precount);
  app.use("/v1/documents/batch", precount);

  // Admin and tenant routes are separate groups, each behind its own authentication: a route file
  // never authenticates, and no route is reachable without one or the other.
  app.use("/v1/admin/*", adminAuth(services.adminKey));
  app.route("/v1/admin", adminRoutes(services.tenantAdmin, validationHook));
  app.route("/v1/admin", adminPlanRoutes(services.planAdmin, validationHook));
  app.route("/v1/admin", adminUsageRoutes(services.usageReports, validationHook));

  // Run records: admission refusals of chats and uploads (the route never runs), and any tenant's runs for the admin.
  if (services.runs) {
    for (const [path, kind] of [["/v1/chat", "chat"], ["/v1/documents", "ingest"], ["/v1/documents/batch", "ingest"]] as const) {
      app.use(path, recordAdmissionRefusals(services.runs.records, kind));
    }
    app.route("/v1/admin", adminRunRoutes(services.runs.records, validationHook));
  }

  const authenticate = tenantAuth(services.db, services.securityEvents, services.tenantAuthGuards);
  const admit = admission(services.admission);
  const authenticateAndAdmit: MiddlewareHandler<AppEnv> = (c, next) =>
    authenticate(c, async () => {
      await admit(c, next);
    });
  const tenantApp = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  tenantApp.use("*", async (c, next) => {
    // Paths under /v1/admin are handled above; everything else in /v1 needs a tenant key.
    if (c.req.path.startsWith("/v1/admin/") || c.req.path === "/v1/admin") return next();
    return authenticateAndAdmit(c, next);
  });
  tenantApp.route("/", documentRoutes(services.ingestor, services.documents, services.jobQueue, services.limits, validationHook, services.runs?.records));
  tenantApp.route("/", jobRoutes(services.jobQueue, validationHook));
  tenantApp.route("/", retrievalRoutes(services.retriever, services.chat, services.limits.searchMaxK, validationHook));
  tenantApp.route("/", limitsRoutes(services.budgets, validationHook));
  tenantApp.route("/", tenantUsageRoutes(services.usageReports, validationHook));
  if (services.runs) tenantApp.route("/", runRoutes(services.runs.records, services.runs.cases, validationHook));
  app.route("/v1", tenantApp);

  app.openAPIRegistry.registerComponent("securitySchemes", "tenantKey", {
    type: "http",
    scheme: "bearer",
    description: "A tenant API key (`fence_<env>_…`) issued by the platform admin.",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "adminKey", {
    type: "http",
    scheme: "bearer",
    description: "The platform admin key (FENCE_ADMIN_KEY).",
  });
  const openApiConfig = {
    openapi: "3.1.0",
    info: {
      title: "Fence API",
      version: "1.0.0",
      description: "Tenant-isolated retrieval-augmented generation: upload documents, search, ask grounded questions.",
    },
  };
  app.doc31("/openapi.json", openApiConfig);
  app.get("/docs", (c) => c.html(renderDocsPage(app.getOpenAPI31Document(openApiConfig) as never)));
  return app;
}
