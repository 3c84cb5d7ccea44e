/**
 * Counting the parts of a multipart upload in its raw bytes, before anything parses them: 80,000
 * one-byte parts are 80,000 File objects to build. A linear scan that allocates nothing per part
 * refuses such a body in milliseconds, while the exact limits stay with the route. (A JSON batch's
 * items are counted where its body is parsed: ingest/json-body.ts.)
 */

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
