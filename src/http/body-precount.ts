/**
 * Counting the parts of a multipart upload in its raw bytes, before anything parses them: 80,000
 * one-byte parts are 80,000 File objects to build. A linear scan that allocates nothing per part
 * refuses such a body in milliseconds, while the exact limits stay with the route. (A JSON batch's
 * items are counted where its body is parsed: ingest/json-body.ts.)
 */

import { ValidationError } from "../core/errors.js";

/** A single upload's form has at most file, title, source_id and metadata; the rest is slack. */
export const SINGLE_UPLOAD_MAX_PARTS = 16;
/** Besides one `file` and one `source_id` per document, a batch form may carry a few stray fields. */
const BATCH_EXTRA_PARTS = 8;

/** A 400 naming the field whose limit the body breaks, before the validator has seen it. */
export function bodyLimitError(field: string, message: string): ValidationError {
  return new ValidationError(`Invalid request: ${field}: ${message}`, { fields: [{ field, message }] });
}

/**
 * Refuses (400) a multipart upload of more parts than its route could take, counted in the raw
 * bytes. The exact limits (documents per batch, one file per upload) stay with the routes. A body
 * without a usable boundary is left to the form parser, which refuses it.
 */
export function checkFormParts(bytes: Uint8Array, contentType: string, batch: boolean, limits: { batchMaxDocuments: number }): void {
  const boundary = multipartBoundary(contentType);
  if (boundary === undefined) return;
  const parts = countMultipartParts(bytes, boundary);
  const maxParts = batch ? 2 * limits.batchMaxDocuments + BATCH_EXTRA_PARTS : SINGLE_UPLOAD_MAX_PARTS;
  if (parts <= maxParts) return;
  throw batch
    ? bodyLimitError("file", `a batch holds at most ${limits.batchMaxDocuments} documents (a form of ${parts} parts, at most ${maxParts}: one file and one source_id per document)`)
    : bodyLimitError("(form)", `an upload has at most ${maxParts} form parts (file, title, source_id, metadata); got ${parts}`);
}

/** The `boundary` parameter of a multipart content type, or undefined. */
export function multipartBoundary(contentType: string): string | undefined {
  const lower = contentType.toLowerCase();
  const at = lower.indexOf("boundary=");
  if (at < 0) return undefined;
  let value = contentType.slice(at + "boundary=".length);
  if (value.startsWith('"')) {
    const close = value.indexOf('"', 1);
    value = close < 0 ? value.slice(1) : value.slice(1, close);
  } else {
    const end = value.search(/[;,\s]/);
    if (end >= 0) value = value.slice(0, end);
  }
  return value.length > 0 && value.length <= 200 ? value : undefined;
}

/**
 * An upper bound on the parts of a multipart body: the delimiter lines (`--boundary`) minus the
 * closing one. Buffer.indexOf is a native substring search, linear in the body.
 */
export function countMultipartParts(body: Uint8Array, boundary: string): number {
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const delimiter = Buffer.from(`--${boundary}`, "utf8");
  let delimiters = 0;
  for (let at = bytes.indexOf(delimiter); at >= 0; at = bytes.indexOf(delimiter, at + delimiter.length)) delimiters++;
  return Math.max(0, delimiters - 1);
}
