import { ValidationError } from "../errors.js";

/** A report window: `from` inclusive, `to` exclusive, both instants in UTC. */
export interface UsageRange {
  from: Date;
  to: Date;
}

/** Longer windows would turn a showback read into a full scan of a tenant's history. */
export const MAX_RANGE_DAYS = 400;
const DAY_MS = 24 * 60 * 60 * 1000;

/** `2026-11-01`, or a full timestamp with an explicit zone (`Z` or `+02:00`): never local time. */
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/**
 * Parses the `from` / `to` of a usage query. Defaults: the start of the current UTC month to now
 * (the budget month). A date without a time means midnight UTC. Anything else — an unparseable or
 * impossible date (`2026-02-31`), `to` not after `from`, a window over MAX_RANGE_DAYS — is a
 * ValidationError naming the field, never a silently different window.
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

function parseInstant(field: "from" | "to", value: string): Date {
  const match = ISO_DATE.exec(value.trim());
  if (!match) throw invalid(field, "must be an ISO 8601 date (2026-11-01) or timestamp with a zone (2026-11-01T12:00:00Z)");
  const [, year, month, day, hour, minute, second] = match.map(Number);
  // Date.parse rolls 2026-02-31 over to March 3rd; a date that does not exist is refused instead.
  const calendar = new Date(Date.UTC(year!, month! - 1, day!));
  const realDate = calendar.getUTCFullYear() === year && calendar.getUTCMonth() === month! - 1 && calendar.getUTCDate() === day;
  const realTime = match[4] === undefined || (hour! < 24 && minute! < 60 && (match[6] === undefined || second! < 60));
  const parsed = new Date(match[4] === undefined ? `${value.trim()}T00:00:00Z` : value.trim());
  if (!realDate || !realTime || Number.isNaN(parsed.getTime())) throw invalid(field, `is not a real date: ${value}`);
  return parsed;
}

function invalid(field: string, message: string): ValidationError {
  return new ValidationError(`Invalid request: ${field}: ${message}`, { fields: [{ field, message }] });
}
