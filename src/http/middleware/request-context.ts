import { randomUUID } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import type { Logger } from "../../observability/logger.js";
import type { SecurityEvents } from "../../observability/security-events.js";
import { AccessLog } from "../access-log.js";
import type { AppEnv } from "../types.js";
import { routeTemplate } from "./http-metrics.js";
import { whenStreamEnds } from "./stream-end.js";

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * The address of the client: the socket's peer, or — behind `trustedProxyHops` proxies that each
 * append to `X-Forwarded-For` — the entry the outermost trusted proxy wrote. Entries to the left
 * of it were written by the client and could be anything, so they are never used.
 */
export function clientAddress(c: Context<AppEnv>, trustedProxyHops: number): string | undefined {
  // Node's server passes the request in the environment; other runtimes may not.
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return clientAddressFrom(c.req.header("x-forwarded-for"), env?.incoming?.socket?.remoteAddress, trustedProxyHops);
}

/** `clientAddress` from the raw parts: the X-Forwarded-For header and the socket's peer. */
export function clientAddressFrom(forwardedFor: string | undefined, peer: string | undefined, trustedProxyHops: number): string | undefined {
  if (trustedProxyHops > 0) {
    const forwarded = (forwardedFor ?? "")
      .split(",")
      .map((part) => part.trim())
      .filter(Boolean);
    const entry = forwarded[forwarded.length - trustedProxyHops];
    if (entry) return entry;
  }
  return peer;
}

/**
 * Gives every request an id (the client's `x-request-id` when it is well-formed, else a new UUID),
 * echoes it on the response, and writes its access-log line (AccessLog: sampled for refusals)
 * with what `c.get("outcome")` gathered. Tenant, key id, project and environment come from the
 * child logger that authentication installed. A streamed response is logged when its stream ends,
 * so latency and the model's figures cover the whole answer.
 *
 * Every 401 is also noted per client address, to report repeated ones as a security event.
 */
export function requestContext(
  logger: Logger,
  securityEvents?: SecurityEvents,
  /** Shared with the Node front door (front-door.ts) where there is one. */
  accessLog: AccessLog = new AccessLog(logger),
): MiddlewareHandler<AppEnv> {
  return async function requestContextMiddleware(c, next) {
    const requestId = requestIdOf(c.req.header("x-request-id"));
    const started = performance.now();
    c.set("requestId", requestId);
    c.set("log", logger.child({ request_id: requestId }));
    c.set("outcome", {});
    c.header("x-request-id", requestId);
    await next();
    c.res.headers.set("x-request-id", requestId);

    const status = c.res.status;
    // The route aimed at, as the metrics name it: a refusal answered by a middleware (known-refusals
    // on `/v1/*`) is logged under the route it refused, not the middleware's pattern.
    const route = routeTemplate(c);
    const method = c.req.method;
    let written = false;
    const writeAccessLine = () => {
      if (written) return;
      written = true;
      const entry = { method, route, status, latencyMs: performance.now() - started, outcome: c.get("outcome"), requestId, tenant: c.get("tenant") };
      accessLog.write(entry, c.get("log"));
    };

    if (status === 401 && securityEvents) {
      securityEvents.noteUnauthorized(clientAddress(c, securityEvents.trustedProxyHops), { request_id: requestId, route });
    }
    // The header first: reading `body` makes the Node adapter build a full Response and stream it
    // out, which costs a refusal flood a third of its throughput (bench:flood, shape a).
    const body = /^text\/event-stream/i.test(c.res.headers.get("content-type") ?? "") ? c.res.body : null;
    if (body) {
      c.res = new Response(whenStreamEnds(body, writeAccessLine), c.res);
    } else {
      writeAccessLine();
    }
  };
}

/** The client's `x-request-id` when it is well-formed (so it can be logged and echoed), else a new UUID. */
export function requestIdOf(incoming: string | undefined): string {
  return incoming && CLIENT_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}
