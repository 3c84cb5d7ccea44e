import { Hono } from "hono";
import { traitsOf } from "../core/error-catalogue.js";
import { FenceError } from "../core/errors.js";
import { errorHeaders } from "../http/limit-headers.js";
import { bodyLimit } from "../http/middleware/body-limit.js";
import type { FenceServices } from "../http/services.js";
import type { AppEnv } from "../http/types.js";
import { assetAt } from "./assets.js";
import { page, type ConsoleEnv, type ConsoleVariables, type PageStatus } from "./console-env.js";
import { MessagePage } from "./layout.js";
import { operationsPages } from "./platform/operations.js";
import { planPages } from "./platform/plans.js";
import { tenantPages } from "./platform/tenants.js";
import { usagePages } from "./platform/usage.js";
import { ConsoleSessions } from "./sessions.js";
import { askPages } from "./tenant/ask.js";
import { auditPages } from "./tenant/audit.js";
import { documentPages } from "./tenant/documents.js";
import { keyPages } from "./tenant/keys.js";
import { overviewPages } from "./tenant/overview.js";
import { runPages } from "./tenant/runs.js";
import { settingsPages } from "./tenant/settings.js";

/**
 * What a console page may load: its own files, nothing inline, nothing from another origin, no
 * framing; forms post and scripts fetch only to Fence.
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export interface ConsoleOptions {
  /** Signs session cookies (FENCE_CONSOLE_SECRET); a random one per process when absent. */
  secret?: string | undefined;
}

export type ConsoleServices = Pick<
  FenceServices,
  | "db"
  | "adminKey"
  | "tenantAuthGuards"
  | "admission"
  | "securityEvents"
  | "documents"
  | "jobs"
  | "ingestor"
  | "limits"
  | "chat"
  | "usageReports"
  | "budgets"
  | "tenantKeys"
  | "tenantAdmin"
  | "runs"
  | "ownerSettings"
  | "auditLog"
  | "planAdmin"
  | "providerLanes"
  | "logger"
>;

/**
 * The console (issue 19): the tenant's and the platform's pages at /console, server-rendered on
 * Fence's own app. A page is one more way to call a service — the API's services, under the same
 * TenantContext and the same admission — never a second data path (sessions.tsx).
 */
export function consoleRoutes(services: ConsoleServices, options: ConsoleOptions = {}) {
  const sessions = new ConsoleSessions(services, options.secret);
  const app = new Hono<AppEnv>();

  app.use("*", async (c, next) => {
    await next();
    c.header("content-security-policy", CONTENT_SECURITY_POLICY);
    c.header("x-content-type-options", "nosniff");
    c.header("x-frame-options", "DENY");
    c.header("referrer-policy", "no-referrer");
    if (!c.res.headers.has("cache-control")) c.header("cache-control", "no-store");
  });
  // The API's body limit: an upload through the console is no larger than one through /v1.
  app.use("*", bodyLimit(services.limits.maxBodyBytes));

  app.get("/assets/:name", (c) => {
    const asset = assetAt(c.req.path);
    if (!asset) return c.text("Not found.", 404);
    c.header("cache-control", "public, max-age=31536000, immutable");
    return c.body(asset.body, 200, { "content-type": asset.contentType });
  });

  app.get("/", async (c) => {
    const session = await sessions.current(c);
    if (!session) return c.redirect("/console/sign-in", 303);
    return c.redirect(session.kind === "admin" ? "/console/platform/tenants" : "/console/overview", 303);
  });
  app.get("/sign-in", (c) => sessions.signInPage(c, 200));
  app.post("/sign-in", (c) => sessions.signIn(c));
  app.post("/sign-out", (c) => sessions.signOut(c));

  const tenant = (routes: Hono<ConsoleEnv>) => new Hono<ConsoleEnv>().use("*", sessions.tenantPages).route("/", routes);
  const platform = (routes: Hono<ConsoleEnv>) => new Hono<ConsoleEnv>().use("*", sessions.platformPages).route("/", routes);
  const mount = (path: string, sub: Hono<ConsoleEnv>) => app.route(path, sub as unknown as Hono<AppEnv>);
  mount("/overview", tenant(overviewPages(services)));
  mount("/documents", tenant(documentPages(services)));
  mount("/ask", tenant(askPages(services)));
  mount("/runs", tenant(runPages(services)));
  mount("/keys", tenant(keyPages(services)));
  mount("/settings", tenant(settingsPages(services)));
  mount("/audit", tenant(auditPages(services)));
  mount("/platform/tenants", platform(tenantPages(services)));
  mount("/platform/plans", platform(planPages(services)));
  mount("/platform/usage", platform(usagePages(services)));
  mount("/platform/operations", platform(operationsPages(services)));

  // A route, not notFound(): a sub-app's notFound is not used once it is mounted (the API's JSON 404 would answer).
  app.all("*", (c) => page(c, <MessagePage title="Not found" message="There is no such page." />, 404));
  app.onError((error, c) => {
    // Set by the session guards; absent when the error came before them.
    const chrome = (c.var as Partial<ConsoleVariables>).chrome;
    // What the API would answer, as a page: its status and its message (a refused limit, a bad
    // field, a document that is not the tenant's — the same 404 as one that does not exist).
    if (error instanceof FenceError) {
      const status = traitsOf(error).status as PageStatus;
      if (status === 401) return sessions.signedOut(c);
      // Retry-After and the RateLimit fields, as the API sends them with a refusal.
      for (const [name, value] of Object.entries(errorHeaders(error))) c.header(name, value);
      if (c.req.header("hx-request") === "true") return c.text(error.message, status);
      const title =
        error.code === "tenant_suspended"
          ? "Tenant suspended"
          : status === 404
            ? "Not found"
            : status === 429 || status === 503
              ? "Busy"
              : status >= 500
                ? "Stopped"
                : "Not done";
      // "Retry after the indicated time" points at a header a person does not see: say when.
      const message = error.retryAfterSeconds !== undefined ? `${error.message} Try again in ${Math.ceil(error.retryAfterSeconds)} s.` : error.message;
      return page(c, <MessagePage title={title} message={message} chrome={chrome} />, status);
    }
    services.logger.error({ err: error, request_id: c.get("requestId") }, "console page failed");
    return page(c, <MessagePage title="Something went wrong" message={`The page could not be shown (request ${c.get("requestId")}).`} chrome={chrome} />, 500);
  });
  return app;
}
