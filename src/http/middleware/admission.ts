import type { MiddlewareHandler } from "hono";
import type { AdmissionController } from "../../limits/admission.js";
import type { AppEnv } from "../types.js";

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
      for (const [name, value] of Object.entries(ticket.headers)) c.res.headers.set(name, value);
      streaming = c.res.headers.get("content-type")?.startsWith("text/event-stream") === true && c.res.body !== null;
      if (streaming) c.res = new Response(releaseWhenDone(c.res.body!, ticket.release), c.res);
    } finally {
      if (!streaming) await ticket.release();
    }
  };
}

/** Passes a response body through and releases the admission slot when it ends or is cancelled. */
function releaseWhenDone(body: ReadableStream<Uint8Array>, release: () => Promise<void>): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          // Freed before the client sees the end, so its next request finds the slot free.
          await release();
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        controller.error(error);
        await release();
      }
    },
    async cancel(reason) {
      await reader.cancel(reason).catch(() => undefined);
      await release();
    },
  });
}
