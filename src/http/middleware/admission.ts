import type { MiddlewareHandler } from "hono";
import type { AdmissionController } from "../../limits/admission.js";
import { rateLimitHeaders } from "../limit-headers.js";
import type { AppEnv } from "../types.js";
import { whenStreamEnds } from "./stream-end.js";

/**
 * Runs after authentication: admits the request against the tenant's plan (429 with reason,
 * Retry-After and RateLimit-* headers) and the instance's ceiling (503), and frees its slot when
 * the response is done — for a stream, when the stream ends.
 */
export function admission(controller: AdmissionController): MiddlewareHandler<AppEnv> {
  return async function admissionMiddleware(c, next) {
    const ticket = await controller.admit(c.get("tenant"), c.get("quota"));
    let streaming = false;
    try {
      await next();
      for (const [name, value] of Object.entries(rateLimitHeaders(ticket.rateLimit))) c.res.headers.set(name, value);
      streaming = c.res.headers.get("content-type")?.startsWith("text/event-stream") === true && c.res.body !== null;
      if (streaming) c.res = new Response(whenStreamEnds(c.res.body!, ticket.release), c.res);
    } finally {
      if (!streaming) await ticket.release();
    }
  };
}
