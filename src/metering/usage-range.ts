import { parseStorableInstant } from "../db/storable-instant.js";
import { ValidationError } from "../core/errors.js";

/** A report window: `from` inclusive, `to` exclusive, both instants in UTC. */
export interface UsageRange {
  from: Date;
  to: Date;
}

/** Longer windows would turn a showback read into a full scan of a tenant's history. */
export const MAX_RANGE_DAYS = 400;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Parses the `from` / `to` of a usage query. Defaults: the start of the current UTC month to now
 * (the budget month). A date without a time means midnight UTC. Anything else — an unparseable,
 * impossible (`2026-02-31`) or unstorable (year 0, past 9999) date, `to` not after `from`, a window
 * over MAX_RANGE_DAYS — is a ValidationError naming the field, never a silently different window.
 */
export function resolveUsageRange(input: { from?: string | undefined; to?: string | undefined }, now = new Date()): UsageRange {
  const to = input.to === undefined ? now : parseInstant("to", input.to);
  const from = input.from === undefined ? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)) : parseInstant("from", input.from);
  if (to.getTime() <= from.getTime()) {
    throw invalid("to", `must be after from (${from.toISOString()})`);
  }
  if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * DAY_MS) {
    throw invalid("to", `the window from ${from.toISOString()} may span at most ${MAX_RANGE_DAYS} days`);
  }
  return { from, to };
}

/** The shared date rule (db/storable-instant.ts): the same grammar and bounds as every other route. */
function parseInstant(field: "from" | "to", value: string): Date {
  const parsed = parseStorableInstant(value);
  if ("problem" in parsed) throw invalid(field, parsed.problem);
  return parsed.instant;
}

function invalid(field: string, message: string): ValidationError {
  return new ValidationError(`Invalid request: ${field}: ${message}`, { fields: [{ field, message }] });
}
