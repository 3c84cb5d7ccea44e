import type { Context, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { PayloadTooLargeError } from "../../core/errors.js";
import { awayFromSeat } from "../../flow/seat-scope.js";
import type { DocumentParser } from "../../ingest/document-parser.js";
import { toFormData } from "../../ingest/form-body.js";
import { parseJsonBody, type JsonBodyLimits, type JsonBodyOutcome } from "../../ingest/json-body.js";
import type { AdmissionController } from "../../limits/admission.js";
import { bodyLimitError, checkFormParts } from "../body-precount.js";
import { bodyCacheOf, carriesBody, nodeIncomingOf, readRequestBytes, wholeBuffer } from "../request-bytes.js";
import type { AppEnv } from "../types.js";

/**
 * Bodies up to this size are read without a place of their own and parsed on the event loop (well
 * under a millisecond); a larger one waits for a large-body place and goes to a parse thread,
 * whose round trip costs less than parsing it here.
 */
export const INLINE_BODY_BYTES = 64 * 1024;

/**
 * How long a large body may take to arrive once it has a place: 5 s, plus 1 s a MiB it declares
 * (a 10 MB upload: 15 s; a client of an AI platform sends over a fast link). Past it, 408 and the
 * place is freed: a slow sender cannot keep the few places from everyone else.
 */
export function largeBodyReadMs(declaredBytes: number | undefined): number {
  return 5_000 + Math.ceil((declaredBytes ?? 0) / (1024 * 1024)) * 1_000;
}

/** The media types Hono's JSON validator parses: `application/json`, `application/*+json`. */
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;
const FORM_MEDIA_TYPE = /^multipart\/form-data$/i;

/** Routes whose raw bytes are still in use after the parse (stored, or queued as a job's payload). */
const UPLOAD_PATHS = new Set(["/v1/documents", "/v1/documents/batch"]);

type BodyLimits = { batchMaxDocuments: number; maxBodyBytes: number; maxTextChars: number };

/**
 * Reads and parses a tenant request's body once, and leaves the result where Hono's validators and
 * readers look for it. Mounted after authentication and admission: a refused request's body is
 * never read (a client without a valid key gets its 401 unread).
 *
 * A body over 64 KiB (declared, or once that much has arrived) is read only with a large-body place
 * (AdmissionController.takeBodyPlace), waited for away from the request's seat and held until the
 * body is parsed, or for an upload until the response: a tenant sending many 10 MB uploads at once took the cores every other tenant's search
 * needed while they were received, copied, parsed and written to the database (issue 16). It must
 * arrive in time (largeBodyReadMs), so a slow sender cannot keep a place. Then it is parsed on a
 * parse thread: Hono would parse on the loop (10 MB of JSON is ~100 ms, once per reader; a 10 MB
 * file ~45-200 ms to cut out of its form). A form's parts are counted in the raw bytes first, and
 * a JSON batch's `documents` in the raw text: 400 past the limit before anything is built.
 */
export function parsedBodies(parser: DocumentParser, limits: BodyLimits, admission: AdmissionController): MiddlewareHandler<AppEnv> {
  const { maxBodyBytes } = limits;
  return async function parsedBodyMiddleware(c, next) {
    const incoming = nodeIncomingOf(c.env);
    if (!carriesBody(c.req.raw, incoming)) return next();
    const contentType = c.req.header("content-type") ?? "";
    const mediaType = contentType.split(";")[0]!.trim();
    const json = JSON_MEDIA_TYPE.test(mediaType);
    if (!json && !FORM_MEDIA_TYPE.test(mediaType)) return next(); // the route refuses it, unread
    try {
      const bytes = await readRequestBytes(c.req.raw, {
        overBytes: INLINE_BODY_BYTES,
        admit: async (declared) => {
          c.set("bodyPlace", await awayFromSeat(() => admission.takeBodyPlace(c.get("tenant"), c.get("quota"))));
          // A body of unknown length is allowed the time of the largest one.
          return largeBodyReadMs(declared ?? maxBodyBytes);
        },
        pace: admission.largeBodyPace(c.get("tenant").tenantId),
      }, incoming);
      if (json) await readJson(c, parser, limits, bytes);
      else await readForm(c, parser, limits, contentType, bytes);
      // An upload's bytes go on to be hashed and written to the database; any other body is done
      // with once parsed (a chat with a long history must not hold a place through its LLM call).
      if (!UPLOAD_PATHS.has(c.req.path)) releaseBodyPlace(c);
      await next();
    } finally {
      releaseBodyPlace(c);
    }
  };
}

/**
 * Reads an admin request's body whole (admin bodies are small, and come from one trusted party)
 * and leaves it in Hono's cache. A body over the limit is refused here with 413 as it arrives
 * (body-limit.ts); read by Hono's validator, the same refusal would become 400 "malformed JSON".
 */
export function bufferedBodies(): MiddlewareHandler<AppEnv> {
  return async function bufferedBodyMiddleware(c, next) {
    const incoming = nodeIncomingOf(c.env);
    if (carriesBody(c.req.raw, incoming)) bodyCacheOf(c.req).arrayBuffer = Promise.resolve(wholeBuffer(await readRequestBytes(c.req.raw, undefined, incoming)));
    return next();
  };
}

/** Gives back the request's large-body place (if it holds one) once its raw body is done with. */
export function releaseBodyPlace(c: Context<AppEnv>): void {
  c.get("bodyPlace")?.release();
}

async function readJson(c: Context<AppEnv>, parser: DocumentParser, limits: BodyLimits, bytes: Uint8Array): Promise<void> {
  const jsonLimits: JsonBodyLimits = {
    items: c.req.path.endsWith("/documents/batch") ? { key: "documents", max: limits.batchMaxDocuments } : undefined,
    // No field of any route holds more than a document's text.
    maxStringChars: limits.maxTextChars,
  };
  const outcome = bytes.length <= INLINE_BODY_BYTES ? parseJsonBody(bytes, jsonLimits) : await parser.parseJsonBody(bytes, { id: c.get("tenant").tenantId }, jsonLimits);
  if (outcome.kind === "too_many_items") throw bodyLimitError("documents", `a batch holds at most ${limits.batchMaxDocuments} documents (got more)`);
  if (outcome.kind === "too_deep") throw bodyLimitError("(body)", "the JSON body is nested too deeply");
  if (outcome.kind === "string_too_long") throw new PayloadTooLargeError(limits.maxTextChars, "characters", outcome.path || "(body)");
  const parsed = settled(outcome);
  c.req.json = (() => parsed) as typeof c.req.json;
}

/** One promise for every caller; a malformed body rejects, which the validator answers with 400. */
function settled(outcome: Extract<JsonBodyOutcome, { kind: "parsed" | "malformed" }>): Promise<unknown> {
  if (outcome.kind === "parsed") return Promise.resolve(outcome.value);
  const rejected = Promise.reject(new SyntaxError("Malformed JSON in request body"));
  rejected.catch(() => undefined); // a caller may never ask
  return rejected;
}

/**
 * A form's parts are counted before it is parsed (80,000 one-byte parts are 80,000 Files to
 * build). A small form is left in Hono's cache as bytes for its form validator; a large one as
 * the FormData the parse thread cut out of it, which the validator takes as it is.
 */
async function readForm(c: Context<AppEnv>, parser: DocumentParser, limits: BodyLimits, contentType: string, bytes: Uint8Array): Promise<void> {
  checkFormParts(bytes, contentType, c.req.path.endsWith("/batch"), limits);
  const cache = bodyCacheOf(c.req);
  if (bytes.length <= INLINE_BODY_BYTES) {
    cache.arrayBuffer = Promise.resolve(wholeBuffer(bytes));
    return;
  }
  // The bytes are handed to the thread: nothing may read them afterwards.
  const outcome = await parser.parseFormBody(bytes, contentType, { id: c.get("tenant").tenantId });
  // The validator's own words for a form it cannot parse.
  if (outcome.kind === "malformed") throw new HTTPException(400, { message: `Malformed FormData request. ${outcome.message}` });
  cache.formData = Promise.resolve(toFormData(outcome.entries));
}
