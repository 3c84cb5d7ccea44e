import { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { renderDocsPage } from "./docs-page.js";
import { handleError, handleNotFound } from "./error-handler.js";
import { adminAuth } from "./middleware/admin-auth.js";
import { bodyLimit } from "./middleware/body-limit.js";
import { admission } from "./middleware/admission.js";
import { httpMetrics } from "./middleware/http-metrics.js";
import { httpTracing } from "./middleware/http-tracing.js";
import { knownRefusals } from "./middleware/known-refusals.js";
import { refusedConnections } from "./middleware/refused-connections.js";
import { requestContext } from "./middleware/request-context.js";
import { recordAdmissionRefusals } from "./middleware/run-refusals.js";
import { bufferedBodies, parsedBodies } from "./middleware/request-body.js";
import { tenantAuth } from "./middleware/tenant-auth.js";
import { RouteScopes } from "./route-scopes.js";
import { grants } from "../core/scopes.js";
import { InsufficientScopeError } from "../core/errors.js";
import { adminRoutes } from "./routes/admin.js";
import { adminAuditRoutes, keyRoutes } from "./routes/keys.js";
import { adminPlanRoutes } from "./routes/admin-plans.js";
import { documentRoutes } from "./routes/documents.js";
import { jobRoutes } from "./routes/jobs.js";
import { limitsRoutes } from "./routes/limits.js";
import { settingsRoutes } from "./routes/settings.js";
import { metricsRoutes } from "./routes/metrics.js";
import { operationsRoutes } from "./routes/operations.js";
import { retrievalRoutes } from "./routes/retrieval.js";
import { adminRunRoutes, runRoutes } from "./routes/runs.js";
import { adminUsageRoutes, tenantUsageRoutes } from "./routes/usage.js";
import { validationHook } from "./routes/validation-hook.js";
import type { FenceServices } from "./services.js";
import type { AppEnv } from "./types.js";

/** The HTTP app over one Fence's services; every route module is handed the same services object. */
export function createApp(services: FenceServices): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.use("*", requestContext(services.logger, services.securityEvents, services.accessLog));
  // A refused client's next request on the same connection is read after other tenants' work.
  if (services.refusedReads) app.use("*", refusedConnections(services.refusedReads, services.securityEvents.trustedProxyHops));
  app.onError(handleError);
  app.notFound(handleNotFound);
  if (services.tracing) app.use("*", httpTracing(services.tracing));
  // Always mounted: where there is no Prometheus (Workers) the stand-in answers 501, after authentication.
  app.use("*", httpMetrics(services.metrics));
  app.route("/", metricsRoutes(services));

  app.route("/", operationsRoutes(services));

  // A known key whose window this instance saw used up, or an unknown key from an address it saw
  // blocked, is refused before anything else is done (on Node, the front door answers them first).
  if (services.refusalsOnRecord) app.use("/v1/*", knownRefusals(services.refusalsOnRecord, services.runs, services.securityEvents.trustedProxyHops));

  app.use("/v1/*", bodyLimit(services.limits.maxBodyBytes));

  // Admin and tenant routes are separate groups, each behind its own authentication: a route file
  // never authenticates, and no route is reachable without one or the other.
  app.use("/v1/admin/*", adminAuth(services.adminKey));
  app.use("/v1/admin/*", bufferedBodies());
  app.route("/v1/admin", adminRoutes(services));
  app.route("/v1/admin", adminPlanRoutes(services));
  app.route("/v1/admin", adminUsageRoutes(services));
  app.route("/v1/admin", adminAuditRoutes(services));

  // Run records: admission refusals of chats and uploads (the route never runs), and any tenant's runs for the admin.
  const recordRefusals = recordAdmissionRefusals(services.runs);
  for (const path of ["/v1/chat", "/v1/documents", "/v1/documents/batch"]) app.use(path, recordRefusals);
  app.route("/v1/admin", adminRunRoutes(services));

  const authenticate = tenantAuth(services.db, services.securityEvents, services.tenantAuthGuards);
  const admit = admission(services.admission);
  // The body is read and parsed only once the request is admitted, and under its tenant.
  const parseBody = parsedBodies(services.parser, services.limits, services.admission);
  const authenticateAndAdmit: MiddlewareHandler<AppEnv> = (c, next) =>
    authenticate(c, async () => {
      // A key without the route's scope is refused before admission: it costs no rate-limit slot.
      // routeScopes is built below, once the routes are registered; requests come after.
      const needed = routeScopes.required(c.req.method, c.req.path);
      if (needed && !grants(c.get("tenant").scopes, needed)) throw new InsufficientScopeError(needed);
      await admit(c, async () => {
        await parseBody(c, next);
      });
    });
  const tenantApp = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  tenantApp.use("*", async (c, next) => {
    // Paths under /v1/admin are handled above; everything else in /v1 needs a tenant key.
    if (c.req.path.startsWith("/v1/admin/") || c.req.path === "/v1/admin") return next();
    return authenticateAndAdmit(c, next);
  });
  tenantApp.route("/", documentRoutes(services));
  tenantApp.route("/", jobRoutes(services));
  tenantApp.route("/", retrievalRoutes(services));
  tenantApp.route("/", limitsRoutes(services));
  tenantApp.route("/", tenantUsageRoutes(services));
  tenantApp.route("/", runRoutes(services));
  tenantApp.route("/", keyRoutes(services));
  tenantApp.route("/", settingsRoutes(services));
  const routeScopes = RouteScopes.of(tenantApp, "/v1");
  app.route("/v1", tenantApp);

  app.openAPIRegistry.registerComponent("securitySchemes", "tenantKey", {
    type: "http",
    scheme: "bearer",
    description:
      "A tenant API key (`fence_<env>_…`) issued by the platform admin. While the platform has the key's tenant suspended, " +
      "every route answers 403 `tenant_suspended` (an unknown, revoked or expired key still gets its 401).",
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
