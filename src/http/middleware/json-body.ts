import type { MiddlewareHandler } from "hono";
import type { DocumentParser } from "../../ingest/document-parser.js";
import { parseJsonBody, type JsonBodyOutcome, type JsonItemLimit } from "../../ingest/json-body.js";
import { readRequestBytes } from "../request-bytes.js";
import type { AppEnv } from "../types.js";
import { bodyLimitError } from "./upload-precount.js";

/**
 * Bodies up to this size are parsed on the event loop (well under a millisecond); a larger one
 * goes to a parse thread, whose round trip costs less than parsing it here.
 */
export const INLINE_JSON_BODY_BYTES = 64 * 1024;

/** The media types Hono's JSON validator parses: `application/json`, `application/*+json`. */
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/**
 * Parses a tenant request's JSON body once, off the event loop when it is large, and hands the
 * result to everything that asks `c.req.json()` (the route's validator, the smuggled-tenant-id
 * scan of tenant-auth.ts). Hono would decode and parse the text on the loop, once per caller:
 * 10 MB of JSON held the loop for ~100 ms per request, so a tenant sending six at a time stalled
 * every other tenant's requests (issue 16).
 *
 * Mounted after authentication and admission: a request refused by a limit is never read, and
 * the parse is queued fairly under its tenant. A batch's `documents` are counted in the raw text
 * before anything is built (400 past the batch limit).
 */
export function jsonBodies(parser: DocumentParser, limits: { batchMaxDocuments: number }): MiddlewareHandler<AppEnv> {
  return async function jsonBodyMiddleware(c, next) {
    const mediaType = (c.req.header("content-type") ?? "").split(";")[0]!.trim();
    if (c.req.method === "GET" || c.req.method === "HEAD" || !JSON_MEDIA_TYPE.test(mediaType) || !c.req.raw.body) return next();
    const itemLimit: JsonItemLimit | undefined = c.req.path.endsWith("/documents/batch") ? { key: "documents", max: limits.batchMaxDocuments } : undefined;
    // Read from the raw request, not through Hono's cache: the bytes may be handed to a thread.
    const bytes = await readRequestBytes(c.req.raw);
    const outcome =
      bytes.length <= INLINE_JSON_BODY_BYTES ? parseJsonBody(bytes, itemLimit) : await parser.parseJsonBody(bytes, { id: c.get("tenant").tenantId }, itemLimit);
    if (outcome.kind === "too_many_items") throw bodyLimitError("documents", `a batch holds at most ${limits.batchMaxDocuments} documents (got more)`);
    if (outcome.kind === "too_deep") throw bodyLimitError("(body)", "the JSON body is nested too deeply");
    const parsed = settled(outcome);
    c.req.json = (() => parsed) as typeof c.req.json;
    return next();
  };
}

/** One promise for every caller; a malformed body rejects, which the validator answers with 400. */
function settled(outcome: Exclude<JsonBodyOutcome, { kind: "too_many_items" | "too_deep" }>): Promise<unknown> {
  if (outcome.kind === "parsed") return Promise.resolve(outcome.value);
  const rejected = Promise.reject(new SyntaxError("Malformed JSON in request body"));
  rejected.catch(() => undefined); // a caller may never ask
  return rejected;
}
