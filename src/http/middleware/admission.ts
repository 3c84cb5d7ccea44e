import type { MiddlewareHandler } from "hono";
import { holdingSeat } from "../../flow/seat-scope.js";
import type { AdmissionController, RequestCost } from "../../limits/admission.js";
import { rateLimitHeaders } from "../limit-headers.js";
import { requestCost } from "../request-cost.js";
import type { AppEnv } from "../types.js";
import { whenStreamEnds } from "./stream-end.js";

/**
 * Runs after authentication: admits the request against the tenant's plan (429 with reason,
 * Retry-After and RateLimit-* headers) and takes its seat in the instance (fair across tenants,
 * 429 `fair_share` or 503 when the queues are full); serves the route holding that seat, and frees
 * both when the response is done — for a stream, when the stream ends. `costOf` prices a request
 * for fair queuing (the API's routes by default; the console passes its pages').
 */
export function admission(controller: AdmissionController, costOf: (method: string, path: string) => RequestCost = requestCost): MiddlewareHandler<AppEnv> {
  return async function admissionMiddleware(c, next) {
    const ticket = await controller.admit(c.get("tenant"), c.get("quota"), costOf(c.req.method, c.req.path));
    let streaming = false;
    try {
      await holdingSeat(ticket.seat, next);
      for (const [name, value] of Object.entries(rateLimitHeaders(ticket.rateLimit))) c.res.headers.set(name, value);
      streaming = c.res.headers.get("content-type")?.startsWith("text/event-stream") === true && c.res.body !== null;
      if (streaming) c.res = new Response(whenStreamEnds(c.res.body!, ticket.release), c.res);
    } finally {
      if (!streaming) await ticket.release();
    }
  };
}
