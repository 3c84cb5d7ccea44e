import { randomUUID } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import type { TenantContext } from "../../core/tenant-context.js";
import type { Logger } from "../../observability/logger.js";
import { RepeatSampler } from "../../observability/repeat-sampler.js";
import type { SecurityEvents } from "../../observability/security-events.js";
import type { AppEnv, RequestOutcome } from "../types.js";
import { routeTemplate } from "./http-metrics.js";
import { whenStreamEnds } from "./stream-end.js";

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * The address of the client: the socket's peer, or — behind `trustedProxyHops` proxies that each
 * append to `X-Forwarded-For` — the entry the outermost trusted proxy wrote. Entries to the left
 * of it were written by the client and could be anything, so they are never used.
 */
export function clientAddress(c: Context<AppEnv>, trustedProxyHops: number): string | undefined {
  if (trustedProxyHops > 0) {
    const forwarded = (c.req.header("x-forwarded-for") ?? "")
      .split(",")
      .map((part) => part.trim())
      .filter(Boolean);
    const entry = forwarded[forwarded.length - trustedProxyHops];
    if (entry) return entry;
  }
  // Node's server passes the request in the environment; other runtimes may not.
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress;
}

/** What a tenant's child logger binds (tenant-auth.ts), for the lines written without one. */
export function tenantLogFields(ctx: TenantContext): Record<string, string> {
  return { tenant_id: ctx.tenantId, key_id: ctx.keyId, project: ctx.project, environment: ctx.environment };
}

/** The outcome's fields under their log names; only those that were set. */
function outcomeFields(outcome: RequestOutcome): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(outcome)) {
    if (value !== undefined) fields[name.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`)] = value;
  }
  return fields;
}

/**
 * Gives every request an id (the client's `x-request-id` when it is well-formed, else a new UUID),
 * echoes it on the response, and writes one access-log line: method, route pattern (never the raw
 * path, which may hold ids or personal data), status, latency and what `c.get("outcome")` gathered
 * (error code, limit decision, model, tokens, cache). Tenant, key id, project and environment come
 * from the child logger that authentication installed. A streamed response is logged when its
 * stream ends, so latency and the model's figures cover the whole answer. Bodies are never logged.
 *
 * Every 401 is also noted per client address, to report repeated ones as a security event.
 *
 * Refusals (401, 429, 503) come in floods: their lines are sampled — the first of a kind (route,
 * status, reason, tenant, key) each second is written with `repeated`, the count skipped before it,
 * and what is left at the end of a second is written once by a drain ("requests repeated", with the
 * last one's fields and the count) — so a flood costs a few lines a second, and every refusal is
 * still counted (and in `fence_limit_refusals_total`).
 */
const SAMPLED_STATUSES = new Set([401, 429, 503]);

export function requestContext(logger: Logger, securityEvents?: SecurityEvents): MiddlewareHandler<AppEnv> {
  const repeats = new RepeatSampler();
  let drain: NodeJS.Timeout | undefined;
  const drainLater = () => {
    drain ??= setTimeout(() => {
      drain = undefined;
      for (const { fields, repeated } of repeats.drain()) logger.info({ ...fields, repeated }, "requests repeated");
      // A kind still inside its window keeps its count for a later drain, even if no request comes.
      if (repeats.holdsSkipped()) drainLater();
    }, 1100);
    drain.unref?.();
  };
  return async function requestContextMiddleware(c, next) {
    const incoming = c.req.header("x-request-id");
    const requestId = incoming && CLIENT_REQUEST_ID.test(incoming) ? incoming : randomUUID();
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
      const fields: Record<string, unknown> = {
        method,
        route,
        status,
        latency_ms: Math.round((performance.now() - started) * 10) / 10,
        ...outcomeFields(c.get("outcome")),
      };
      if (!SAMPLED_STATUSES.has(status)) return c.get("log").info(fields, "request");
      const tenant = c.get("tenant");
      if (fields.refused_on_record && tenant) Object.assign(fields, tenantLogFields(tenant));
      const signature = `${status} ${method} ${route} ${String(fields.error_code ?? "")} ${String(fields.limit_reason ?? "")} ${tenant?.tenantId ?? ""} ${tenant?.keyId ?? ""}`;
      const sampled = repeats.sample(signature, { ...fields, tenant_id: tenant?.tenantId, key_id: tenant?.keyId, request_id: requestId });
      if (sampled.write) c.get("log").info(sampled.repeated > 0 ? { ...fields, repeated: sampled.repeated } : fields, "request");
      else drainLater();
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
