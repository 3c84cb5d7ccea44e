import { randomUUID } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import type { Logger } from "../../observability/logger.js";
import type { AppEnv } from "../types.js";

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * Gives every request an id (the client's `x-request-id` when it is well-formed, else a new UUID),
 * echoes it on the response, and writes one access-log line with status and latency. Bodies are
 * never logged.
 */
export function requestContext(logger: Logger): MiddlewareHandler<AppEnv> {
  return async function requestContextMiddleware(c, next) {
    const incoming = c.req.header("x-request-id");
    const requestId = incoming && CLIENT_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    const started = performance.now();
    c.set("requestId", requestId);
    c.set("log", logger.child({ request_id: requestId }));
    c.header("x-request-id", requestId);
    await next();
    c.res.headers.set("x-request-id", requestId);
    // Tenant fields come from the child logger that authentication installed.
    c.get("log").info(
      {
        method: c.req.method,
        route: c.req.routePath,
        status: c.res.status,
        latency_ms: Math.round((performance.now() - started) * 10) / 10,
      },
      "request",
    );
  };
}
