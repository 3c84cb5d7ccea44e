import { PayloadTooLargeError, ValidationError } from "../core/errors.js";
import type { QueuedUpload } from "../ingest/ingest-job.js";
import { fileBytes } from "../ingest/form-body.js";
import { detectMediaType, normalizeText, textFileTooLong } from "../ingest/parse-document.js";
import type { CreateDocumentJson } from "./schemas.js";
import { isStorableString, metadataProblem } from "./schemas-strings.js";
import type { z } from "@hono/zod-openapi";

/**
 * The fields of an upload, as JSON or multipart, turned into one QueuedUpload. Multipart fields
 * are not typed by a schema (the form validator only sees strings and files), so each one is held
 * here to the same rule as its JSON twin (schemas-strings.ts): storable, trimmed, bounded.
 */

export const TITLE_MAX = 500;
const SOURCE_ID_MAX = 500;
const METADATA_MAX = 16_384;
/** A title derived from the first line of the text. */
const DERIVED_TITLE_MAX = 120;

/** The start of a text that is searched for its first line (normalising all of a 10 MB text for a title cost 90 ms of loop). */
const TITLE_SOURCE_CHARS = 4096;

/**
 * A JSON upload. Its text is refused (413) past `maxTextChars` here, before it is encoded, hashed
 * and queued: normalising only removes characters, but the raw text is what the request costs, and
 * a flood of oversized texts must be cheap to refuse.
 */
export function jsonUpload(body: z.infer<typeof CreateDocumentJson>, maxTextChars: number): QueuedUpload {
  if (body.text.length > maxTextChars) throw new PayloadTooLargeError(maxTextChars, "characters");
  return {
    // From the text as it will be stored, so a NUL byte in the raw text never reaches the title.
    title: body.title ?? firstLineTitle(normalizeText(body.text.trimStart().slice(0, TITLE_SOURCE_CHARS))),
    mediaType: "text/markdown",
    bytes: new TextEncoder().encode(body.text),
    sourceId: body.source_id,
    metadata: body.metadata,
  };
}

export async function fileUpload(form: Record<string, unknown>, maxTextChars: number): Promise<QueuedUpload> {
  const file = form.file;
  if (!(file instanceof File)) throw new ValidationError("Invalid request: file: exactly one file upload is required");
  return {
    ...(await readFile(file, "file", maxTextChars)),
    title: optionalField(form.title, "title", TITLE_MAX) ?? fileTitle(file),
    sourceId: optionalField(form.source_id, "source_id", SOURCE_ID_MAX),
    metadata: parseMetadata(form.metadata),
  };
}

export async function batchFileUploads(form: Record<string, unknown>, maxTextChars: number): Promise<QueuedUpload[]> {
  const files = [form.file].flat().filter((f) => f !== undefined);
  if (files.length === 0) throw new ValidationError("Invalid request: file: at least one file upload is required");
  const sourceIds = [form.source_id].flat().filter((f) => f !== undefined);
  if (sourceIds.length > 0 && sourceIds.length !== files.length) {
    throw new ValidationError(
      `Invalid request: source_id: give one per file, in order (${sourceIds.length} for ${files.length} files)`,
    );
  }
  return Promise.all(
    files.map(async (file, i) => {
      const field = `file[${i}]`;
      if (!(file instanceof File)) throw new ValidationError(`Invalid request: ${field}: must be a file upload`);
      return {
        ...(await readFile(file, field, maxTextChars)),
        title: fileTitle(file),
        sourceId: optionalField(sourceIds[i], `source_id[${i}]`, SOURCE_ID_MAX),
      };
    }),
  );
}

/** A file's bytes and type; a text file past `maxTextChars` is refused here (413), as a JSON text is. */
async function readFile(file: File, field: string, maxTextChars: number): Promise<Pick<QueuedUpload, "bytes" | "mediaType">> {
  const mediaType = detectMediaType(file.name, file.type);
  const bytes = await fileBytes(file);
  if (bytes.length === 0) throw new ValidationError(`Invalid request: ${field}: the file is empty`);
  if (textFileTooLong(bytes, mediaType, maxTextChars)) throw new PayloadTooLargeError(maxTextChars, "characters");
  return { bytes, mediaType };
}

/** An unpaired surrogate: single-character lookarounds only, so the scan is linear. */
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * The default title: the file name, made storable and cut to TITLE_MAX. A file name is not
 * something the client chose as a title, so a long or odd one is repaired rather than refused:
 * NUL and unpaired surrogates are removed, then it is cut at a character boundary.
 */
export function fileTitle(file: File): string {
  const storable = file.name.replaceAll("\u0000", "").replace(UNPAIRED_SURROGATE, "").trim();
  return cutAtCharacter(storable, TITLE_MAX).trim() || "Untitled";
}

/** The first `max` UTF-16 units of `text`, one fewer when the cut would split a surrogate pair. */
export function cutAtCharacter(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/** A text form field: absent, or a trimmed storable string of 1–maxLength characters (else 400 on the field). */
function optionalField(value: unknown, field: string, maxLength: number): string | undefined {
  if (value === undefined) return undefined;
  const text = typeof value === "string" ? value.trim() : undefined;
  if (text === undefined || text === "" || text.length > maxLength || !isStorableString(text)) {
    const message = `must be a non-empty string of at most ${maxLength} characters, without NUL characters or unpaired surrogates`;
    throw new ValidationError(`Invalid request: ${field}: ${message}`, { fields: [{ field, message }] });
  }
  return text;
}

/** The `metadata` form field: a JSON object of at most 16 KiB, measured before it is parsed. */
function parseMetadata(value: unknown): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string" && value.length <= METADATA_MAX) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      parsed = undefined; // not JSON: the error below
    }
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      const problem = metadataProblem(parsed as Record<string, unknown>);
      if (problem) throw new ValidationError(`Invalid request: metadata: ${problem}`);
      return parsed as Record<string, unknown>;
    }
  }
  throw new ValidationError("Invalid request: metadata: must be a JSON object of at most 16 KiB");
}

/** A Markdown heading marker at the start of the line (anchored, so linear). */
const HEADING_MARKER = /^#+\s*/;

function firstLineTitle(text: string): string {
  // Only the start of the text can hold the first line's title: a huge text is not split whole.
  const start = text.trimStart();
  const newline = start.indexOf("\n");
  const line = (newline < 0 ? start : start.slice(0, newline)).replace(HEADING_MARKER, "").trim();
  // Cut at a character boundary: half a surrogate pair would be unstorable in a job's jsonb.
  return line.length > DERIVED_TITLE_MAX ? `${cutAtCharacter(line, DERIVED_TITLE_MAX - 3)}...` : line || "Untitled";
}
