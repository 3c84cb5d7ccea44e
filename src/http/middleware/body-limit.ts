import type { MiddlewareHandler } from "hono";
import { PayloadTooLargeError } from "../../core/errors.js";
import { declaredLength } from "../request-bytes.js";
import type { AppEnv } from "../types.js";

/**
 * Refuses a body over `maxBytes` (413): at once when its Content-Length says so, and otherwise as
 * it is read — by whoever reads it, after authentication and admission. Hono's own body limit
 * buffers a body of unknown length whole before anything else runs: up to 10 MB received and
 * copied for a client with no valid key, and outside the large-body places (request-body.ts).
 */
export function bodyLimit(maxBytes: number): MiddlewareHandler<AppEnv> {
  return async function bodyLimitMiddleware(c, next) {
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    // Judged from the headers first: on Node, touching `request.body` starts reading it (request-bytes.ts).
    const declared = declaredLength(c.req.raw);
    if (declared !== undefined && !c.req.raw.headers.has("transfer-encoding")) {
      if (declared > maxBytes) throw new PayloadTooLargeError(maxBytes);
      return next();
    }
    const body = c.req.raw.body;
    if (!body) return next();
    let seen = 0;
    const counted = body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          seen += chunk.byteLength;
          if (seen > maxBytes) controller.error(new PayloadTooLargeError(maxBytes));
          else controller.enqueue(chunk);
        },
      }),
    );
    c.req.raw = new Request(c.req.raw, { body: counted, duplex: "half" } as RequestInit);
    return next();
  };
}
