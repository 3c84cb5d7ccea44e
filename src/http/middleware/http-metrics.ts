import type { Context, Hono, MiddlewareHandler } from "hono";
import type { RouterRoute } from "hono/types";
import { matchedRoutes } from "hono/route";
import { limitReasonOf } from "../../core/error-catalogue.js";
import { FenceError } from "../../core/errors.js";
import type { RequestObservation } from "../../observability/metrics.js";
import type { AppEnv } from "../types.js";

/** Where request figures go (FenceMetrics); an interface so the HTTP layer needs no prom-client. */
export interface RequestMetricsSink {
  observeRequest(observation: RequestObservation): void;
}

/**
 * Records every request once its response is ready: latency, status class, error code and limit
 * refusal, by route and tenant. The route is a matched route's TEMPLATE (`/v1/documents/:id`),
 * never `c.req.path`: ids in paths would make a series per document, and a path can carry
 * anything a client typed (see `routeTemplate`).
 *
 * Codes come from the request's outcome (filled by the layers that know); a thrown FenceError
 * (`c.error`, kept by Hono after the error handler ran) fills what the outcome lacks.
 */
export function httpMetrics(sink: RequestMetricsSink): MiddlewareHandler<AppEnv> {
  return async function httpMetricsMiddleware(c, next) {
    const started = performance.now();
    await next();
    const outcome = c.get("outcome") ?? {};
    const error = c.error instanceof FenceError ? c.error : undefined;
    sink.observeRequest({
      routeTemplate: routeTemplate(c),
      method: c.req.method,
      status: c.res.status,
      tenantId: c.get("tenant")?.tenantId,
      seconds: (performance.now() - started) / 1000,
      errorCode: outcome.errorCode ?? error?.code ?? (c.res.status === 404 ? "not_found" : undefined),
      limitReason: outcome.limitReason ?? limitReasonOf(error),
    });
  };
}

/**
 * The template of the handler the request was aimed at. That is the route that answered (Hono's
 * route index after the chain ran) when it is a handler; when a middleware answered instead (a 401
 * or a 429 thrown by authentication or admission), the first handler matched after it, so a refused
 * search still counts as `/v1/search`. With no handler at all (404) it is the middleware's pattern.
 */
export function routeTemplate(c: Context<AppEnv>): string {
  const routes = matchedRoutes(c);
  const reached = c.req.routeIndex;
  return handlerAfter(routes, reached) ?? routes[reached]?.path ?? "";
}

/**
 * The template a request for `method path` is aimed at, from the app's router, before any of it
 * has run (front-door.ts): its first handler's, as `routeTemplate` names a refused request's.
 * Undefined when no handler matches (the app would answer 404).
 */
export function routeTemplateOf(app: Hono<AppEnv>, method: string, path: string): string | undefined {
  const [matched] = app.router.match(method, path);
  return handlerAfter(
    matched.map(([[, route]]) => route),
    -1,
  );
}

/** The path of the first route after `reached` that is a handler, not a middleware (method ALL). */
function handlerAfter(routes: readonly RouterRoute[], reached: number): string | undefined {
  const answered = routes[reached];
  if (answered && answered.method !== "ALL") return answered.path;
  return routes.find((route, i) => i > reached && route.method !== "ALL")?.path;
}
