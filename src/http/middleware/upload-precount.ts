import type { MiddlewareHandler } from "hono";
import { ValidationError } from "../../core/errors.js";
import { countMultipartParts, countTopLevelArrayItems, multipartBoundary } from "../body-precount.js";
import type { AppEnv } from "../types.js";

/** A single upload's form has at most file, title, source_id and metadata; the rest is slack. */
export const SINGLE_UPLOAD_MAX_PARTS = 16;
/** Besides one `file` and one `source_id` per document, a batch form may carry a few stray fields. */
const BATCH_EXTRA_PARTS = 8;

function tooMany(field: string, message: string): ValidationError {
  return new ValidationError(`Invalid request: ${field}: ${message}`, { fields: [{ field, message }] });
}

/**
 * Counts an upload's items in its raw body and refuses an oversized one (400) before anything
 * parses it: the JSON `documents` array of a batch, or the parts of a multipart form. It must run
 * before tenant authentication, which parses JSON bodies to look for smuggled tenant ids, and
 * before the validator; both then reuse the body Hono cached here (`text` for JSON, which
 * `c.req.json()` parses; `arrayBuffer` for forms, which the form validator parses), so nothing is
 * read twice. A request without credentials is passed on unread: it gets its 401 for free.
 * The exact limits (documents per batch, one file per upload) stay with the routes.
 */
export function uploadPrecount(limits: { batchMaxDocuments: number }): MiddlewareHandler<AppEnv> {
  return async function uploadPrecountMiddleware(c, next) {
    if (c.req.method !== "POST" || c.req.header("authorization") === undefined) return next();
    const batch = c.req.path.endsWith("/batch");
    const contentType = c.req.header("content-type") ?? "";
    if (batch && /^application\/json/i.test(contentType)) {
      // The scan stops at the first item past the limit: 690,000 items cost as little as 101.
      const documents = countTopLevelArrayItems(await c.req.text(), "documents", limits.batchMaxDocuments);
      if (documents > limits.batchMaxDocuments) {
        throw tooMany("documents", `a batch holds at most ${limits.batchMaxDocuments} documents (got more)`);
      }
    } else if (/^multipart\/form-data/i.test(contentType)) {
      const boundary = multipartBoundary(contentType);
      if (boundary === undefined) return next(); // the form validator refuses it
      const parts = countMultipartParts(new Uint8Array(await c.req.arrayBuffer()), boundary);
      const maxParts = batch ? 2 * limits.batchMaxDocuments + BATCH_EXTRA_PARTS : SINGLE_UPLOAD_MAX_PARTS;
      if (parts > maxParts) {
        throw batch
          ? tooMany("file", `a batch holds at most ${limits.batchMaxDocuments} documents (a form of ${parts} parts, at most ${maxParts}: one file and one source_id per document)`)
          : tooMany("(form)", `an upload has at most ${maxParts} form parts (file, title, source_id, metadata); got ${parts}`);
      }
    }
    return next();
  };
}
