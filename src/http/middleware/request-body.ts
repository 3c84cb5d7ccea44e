import type { Context, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { DocumentParser } from "../../ingest/document-parser.js";
import { toFormData } from "../../ingest/form-body.js";
import { parseJsonBody, type JsonBodyOutcome, type JsonItemLimit } from "../../ingest/json-body.js";
import { bodyCacheOf, readRequestBytes, wholeBuffer } from "../request-bytes.js";
import type { AppEnv } from "../types.js";
import { bodyLimitError } from "./upload-precount.js";

/**
 * Bodies up to this size are parsed on the event loop (well under a millisecond); a larger one
 * goes to a parse thread, whose round trip costs less than parsing it here.
 */
export const INLINE_BODY_BYTES = 64 * 1024;

/** The media types Hono's JSON validator parses: `application/json`, `application/*+json`. */
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;
const FORM_MEDIA_TYPE = /^multipart\/form-data$/i;

/**
 * Parses a tenant request's body once, off the event loop when it is large, and leaves the result
 * where Hono's validators and readers look for it. Hono would parse on the loop: 10 MB of JSON is
 * ~100 ms to decode and parse (once per reader: the route's validator, the smuggled-tenant-id scan
 * of tenant-auth.ts), and a 10 MB file is ~45-200 ms to cut out of its form, so a tenant sending a
 * few at a time stalled every other tenant's requests (issue 16).
 *
 * Mounted after authentication and admission: a request refused by a limit is never parsed, and
 * the parse is queued fairly under its tenant. A JSON batch's `documents` are counted in the raw
 * text before anything is built (400 past the batch limit); a form's parts were counted before
 * authentication (upload-precount.ts).
 */
export function parsedBodies(parser: DocumentParser, limits: { batchMaxDocuments: number }): MiddlewareHandler<AppEnv> {
  return async function parsedBodyMiddleware(c, next) {
    if (c.req.method === "GET" || c.req.method === "HEAD") return next();
    const contentType = c.req.header("content-type") ?? "";
    const mediaType = contentType.split(";")[0]!.trim();
    if (JSON_MEDIA_TYPE.test(mediaType)) await readJson(c, parser, limits);
    else if (FORM_MEDIA_TYPE.test(mediaType)) await readForm(c, parser, contentType);
    return next();
  };
}

async function readJson(c: Context<AppEnv>, parser: DocumentParser, limits: { batchMaxDocuments: number }): Promise<void> {
  if (!c.req.raw.body) return;
  const itemLimit: JsonItemLimit | undefined = c.req.path.endsWith("/documents/batch") ? { key: "documents", max: limits.batchMaxDocuments } : undefined;
  // Read from the raw request, not through Hono's cache: the bytes may be handed to a thread.
  const bytes = await readRequestBytes(c.req.raw);
  const outcome = bytes.length <= INLINE_BODY_BYTES ? parseJsonBody(bytes, itemLimit) : await parser.parseJsonBody(bytes, { id: c.get("tenant").tenantId }, itemLimit);
  if (outcome.kind === "too_many_items") throw bodyLimitError("documents", `a batch holds at most ${limits.batchMaxDocuments} documents (got more)`);
  if (outcome.kind === "too_deep") throw bodyLimitError("(body)", "the JSON body is nested too deeply");
  const parsed = settled(outcome);
  c.req.json = (() => parsed) as typeof c.req.json;
}

/** One promise for every caller; a malformed body rejects, which the validator answers with 400. */
function settled(outcome: Exclude<JsonBodyOutcome, { kind: "too_many_items" | "too_deep" }>): Promise<unknown> {
  if (outcome.kind === "parsed") return Promise.resolve(outcome.value);
  const rejected = Promise.reject(new SyntaxError("Malformed JSON in request body"));
  rejected.catch(() => undefined); // a caller may never ask
  return rejected;
}

/** A large form is left in Hono's cache as a FormData, which its form validator takes as it is. */
async function readForm(c: Context<AppEnv>, parser: DocumentParser, contentType: string): Promise<void> {
  const cache = bodyCacheOf(c.req);
  // The part count (upload-precount.ts) has usually read the body already.
  const bytes = cache.arrayBuffer ? new Uint8Array(await cache.arrayBuffer) : await readRequestBytes(c.req.raw);
  if (bytes.length <= INLINE_BODY_BYTES) {
    cache.arrayBuffer ??= Promise.resolve(wholeBuffer(bytes));
    return;
  }
  // The bytes are handed to the thread: nothing may read them from the cache afterwards.
  delete cache.arrayBuffer;
  const outcome = await parser.parseFormBody(bytes, contentType, { id: c.get("tenant").tenantId });
  // The validator's own words for a form it cannot parse.
  if (outcome.kind === "malformed") throw new HTTPException(400, { message: `Malformed FormData request. ${outcome.message}` });
  cache.formData = Promise.resolve(toFormData(outcome.entries));
}
