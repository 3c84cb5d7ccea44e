import { FenceError, PayloadTooLargeError, UnprocessableDocumentError } from "../core/errors.js";
import type { Flow } from "../flow/fair-queue.js";
import { chunkText, DEFAULT_CHUNK_OPTIONS, type ChunkOptions, type TextChunk } from "./chunk-text.js";
import { parseFormBody, type FormBodyOutcome } from "./form-body.js";
import { parseJsonBody, type JsonBodyLimits, type JsonBodyOutcome } from "./json-body.js";
import { extractText, normalizeText, type SupportedMediaType } from "./parse-document.js";

/** A document's stored text (normalised) and its chunks: what parsing hands to the ingestor. */
export interface ParsedDocument {
  text: string;
  chunks: TextChunk[];
}

export interface ParseLimits {
  /** Longer normalised text is refused (413); a PDF is abandoned as soon as its text passes it. */
  maxTextChars: number;
  chunkOptions?: ChunkOptions | undefined;
}

/**
 * extract → normalise → chunk for one upload, and the parse of a large request body (JSON, form).
 * Everything a tenant's bytes can make expensive happens behind this interface, so where it runs
 * is the runtime's choice: a worker thread with time and memory limits on Node
 * (parse-thread-pool.ts), inline and size-capped on Workers.
 */
export interface DocumentParser {
  readonly chunkOptions: ChunkOptions;
  /** Whose upload it is (fair order across tenants, where parsing queues). */
  parse(bytes: Uint8Array, mediaType: SupportedMediaType, flow: Flow): Promise<ParsedDocument>;
  /** A JSON request body (json-body.ts); never rejects for what the bytes hold. */
  parseJsonBody(bytes: Uint8Array, flow: Flow, limits?: JsonBodyLimits): Promise<JsonBodyOutcome>;
  /** A multipart/form-data request body (form-body.ts); never rejects for what the bytes hold. */
  parseFormBody(bytes: Uint8Array, contentType: string, flow: Flow): Promise<FormBodyOutcome>;
  close?(): Promise<void>;
}

/** The pipeline itself, wherever it runs. */
export async function parseDocument(bytes: Uint8Array, mediaType: SupportedMediaType, limits: ParseLimits): Promise<ParsedDocument> {
  try {
    const text = normalizeText(await extractText(bytes, mediaType, { maxTextChars: limits.maxTextChars }));
    if (text.length > limits.maxTextChars) throw new PayloadTooLargeError(limits.maxTextChars, "characters");
    return { text, chunks: text ? chunkText(text, limits.chunkOptions ?? DEFAULT_CHUNK_OPTIONS) : [] };
  } catch (error) {
    throw asParseError(error);
  }
}

/**
 * What a tenant is told when parsing fails: its own mistake (4xx) as is; anything else — a stack
 * overflow on a pathological document, a parser's internal error — as a 422 without internals
 * (a stack overflow is a RangeError; retrying it would only overflow again).
 */
export function asParseError(error: unknown): FenceError {
  if (error instanceof FenceError) return error;
  if (error instanceof RangeError) return new UnprocessableDocumentError("The document is too deeply nested or too complex to be read.");
  return new UnprocessableDocumentError("The document could not be read.");
}

/**
 * Parsing on the calling thread, for runtimes without worker threads (Cloudflare Workers, whose
 * own CPU limit ends a runaway invocation). Bytes over `maxBytes` are refused before any parsing,
 * so the work done inline is bounded by the input it is given.
 */
export class InlineDocumentParser implements DocumentParser {
  readonly chunkOptions: ChunkOptions;

  constructor(private readonly limits: ParseLimits & { maxBytes: number }) {
    this.chunkOptions = limits.chunkOptions ?? DEFAULT_CHUNK_OPTIONS;
  }

  parse(bytes: Uint8Array, mediaType: SupportedMediaType): Promise<ParsedDocument> {
    if (bytes.length > this.limits.maxBytes) return Promise.reject(new PayloadTooLargeError(this.limits.maxBytes));
    return parseDocument(bytes, mediaType, { ...this.limits, chunkOptions: this.chunkOptions });
  }

  /** Not size-capped here: the body limit bounds it, and it is linear in its bytes. */
  parseJsonBody(bytes: Uint8Array, _flow: Flow, limits?: JsonBodyLimits): Promise<JsonBodyOutcome> {
    return Promise.resolve(parseJsonBody(bytes, limits));
  }

  parseFormBody(bytes: Uint8Array, contentType: string): Promise<FormBodyOutcome> {
    return parseFormBody(bytes, contentType);
  }
}

/** Inline parsing refuses uploads above this before it starts (2 MiB; the default body limit is larger). */
export const INLINE_PARSE_MAX_BYTES = 2 * 1024 * 1024;
