import type { MiddlewareHandler } from "hono";
import type { RequestTracer } from "../../observability/tracing.js";
import type { AppEnv } from "../types.js";
import { routeTemplate } from "./http-metrics.js";

/**
 * One server span per request (only installed when tracing is configured). The span is named and
 * labelled by the route template, like the metrics, and carries the request id and the tenant id
 * once authentication has set it — never the raw path.
 */
export function httpTracing(tracer: RequestTracer): MiddlewareHandler<AppEnv> {
  return async function httpTracingMiddleware(c, next) {
    await tracer.traceRequest(
      { method: c.req.method, requestId: c.get("requestId"), tenantId: () => c.get("tenant")?.tenantId },
      next,
      () => ({
        routeTemplate: routeTemplate(c),
        status: c.res.status,
        tenantId: c.get("tenant")?.tenantId,
        errorCode: c.get("outcome")?.errorCode,
      }),
    );
  };
}
