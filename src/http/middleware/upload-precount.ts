import type { MiddlewareHandler } from "hono";
import { ValidationError } from "../../core/errors.js";
import { countMultipartParts, multipartBoundary } from "../body-precount.js";
import { bodyCacheOf, readRequestBytes, wholeBuffer } from "../request-bytes.js";
import type { AppEnv } from "../types.js";

/** A single upload's form has at most file, title, source_id and metadata; the rest is slack. */
export const SINGLE_UPLOAD_MAX_PARTS = 16;
/** Besides one `file` and one `source_id` per document, a batch form may carry a few stray fields. */
const BATCH_EXTRA_PARTS = 8;

/** A 400 naming the field whose limit the body breaks, before the validator has seen it. */
export function bodyLimitError(field: string, message: string): ValidationError {
  return new ValidationError(`Invalid request: ${field}: ${message}`, { fields: [{ field, message }] });
}

/**
 * Counts the parts of a multipart upload in its raw body and refuses an oversized form (400)
 * before anything parses it; the body is left in Hono's cache (`arrayBuffer`) for the parse
 * (request-body.ts: on a parse thread when large), so nothing is read twice. A request without credentials is passed on unread:
 * it gets its 401 for free. The exact limits (documents per batch, one file per upload) stay with
 * the routes. (A JSON batch's documents are counted where its body is parsed: request-body.ts.)
 */
export function uploadPrecount(limits: { batchMaxDocuments: number }): MiddlewareHandler<AppEnv> {
  return async function uploadPrecountMiddleware(c, next) {
    if (c.req.method !== "POST" || c.req.header("authorization") === undefined) return next();
    const batch = c.req.path.endsWith("/batch");
    const contentType = c.req.header("content-type") ?? "";
    if (/^multipart\/form-data/i.test(contentType)) {
      const boundary = multipartBoundary(contentType);
      if (boundary === undefined) return next(); // the form validator refuses it
      const bytes = await readRequestBytes(c.req.raw);
      // Left in Hono's cache for the parse (request-body.ts) or the form validator.
      bodyCacheOf(c.req).arrayBuffer = Promise.resolve(wholeBuffer(bytes));
      const parts = countMultipartParts(bytes, boundary);
      const maxParts = batch ? 2 * limits.batchMaxDocuments + BATCH_EXTRA_PARTS : SINGLE_UPLOAD_MAX_PARTS;
      if (parts > maxParts) {
        throw batch
          ? bodyLimitError("file", `a batch holds at most ${limits.batchMaxDocuments} documents (a form of ${parts} parts, at most ${maxParts}: one file and one source_id per document)`)
          : bodyLimitError("(form)", `an upload has at most ${maxParts} form parts (file, title, source_id, metadata); got ${parts}`);
      }
    }
    return next();
  };
}
