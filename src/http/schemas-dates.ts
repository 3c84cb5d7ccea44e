import { z } from "@hono/zod-openapi";
import { parseStorableInstant } from "../db/storable-instant.js";
import { isUuid } from "../core/tenant-context.js";
import { isStorableString, storableString, UNSTORABLE_MESSAGE } from "./schemas-strings.js";

/**
 * The one date type of the API: every query, body or cursor that carries a date or timestamp is
 * checked by the same grammar and the same storable range (db/storable-instant.ts), so no route
 * can hand Postgres an instant it cannot take. The value stays the string as sent (trimmed);
 * `new Date(value)` of a valid one is the instant the rule checked.
 */
export const Instant = z
  .string()
  .trim()
  .max(64)
  .superRefine((value, ctx) => {
    const parsed = parseStorableInstant(value);
    if ("problem" in parsed) ctx.addIssue({ code: "custom", message: parsed.problem });
  })
  .openapi({
    description: "An ISO 8601 date (`2026-11-01`, midnight UTC) or a timestamp with a zone (`2026-11-01T12:00:00Z`), years 0001–9999.",
    example: "2026-11-01T00:00:00Z",
  });

/** Decodes unpadded base64url to text without Node's Buffer (the app also runs on Workers). */
function decodeBase64Url(value: string): string {
  const binary = atob(value.replace(/-/g, "+").replace(/_/g, "/"));
  return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(binary, (ch) => ch.charCodeAt(0)));
}

/**
 * Why a documents cursor (base64url of `[created_at, id]`, see ingest/document-store.ts) is not
 * one this API could have issued, or undefined. Its date obeys the same rule as every other date,
 * so a hand-made cursor of year 0 or 275760 is a 400 on `cursor`, not a 500 from the query.
 */
export function documentCursorProblem(cursor: string): string | undefined {
  let decoded: unknown;
  try {
    decoded = JSON.parse(decodeBase64Url(cursor));
  } catch {
    return "is not a cursor this API issued";
  }
  if (!Array.isArray(decoded) || decoded.length !== 2 || typeof decoded[0] !== "string" || typeof decoded[1] !== "string") {
    return "is not a cursor this API issued";
  }
  if (!isUuid(decoded[1])) return "is not a cursor this API issued";
  const parsed = parseStorableInstant(decoded[0]);
  return "problem" in parsed ? `its date ${parsed.problem}` : undefined;
}

/** `cursor` of `GET /v1/documents`; empty means the first page, as before. */
export const DocumentCursor = z
  .string()
  .trim()
  .max(500)
  .refine(isStorableString, UNSTORABLE_MESSAGE)
  .superRefine((cursor, ctx) => {
    const problem = cursor === "" ? undefined : documentCursorProblem(cursor);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

/** Cursors of runs, jobs and eval cases: the id of the last row of the previous page. */
export const IdCursor = storableString(0, 100);
