/**
 * The one rule for every date or timestamp a request carries (query filters, report windows,
 * pagination cursors): an instant both Postgres and JavaScript represent the same way.
 *
 * Bounds: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z, after applying the zone offset.
 * Why these and not 1970–9999: old dates are legitimate filters ("since 1900-01-01"), but
 * - year 0 parses in JavaScript (it is 1 BC) while Postgres has no year 0 and refuses it;
 * - outside 0000–9999, `toISOString()` writes `+010000-…` / `-000001-…`, which Postgres cannot
 *   read, and `9999-12-31T23:59:59-05:00` is such an instant (year 10000 in UTC);
 * - JavaScript's own range ends at ±275760, Postgres's at 4713 BC / 294276 AD.
 * Inside four-digit years every driver round-trips the value exactly, so nothing reaches the
 * database that it cannot take, and the answer is a 400 naming the field rather than a 500.
 */
// Date.UTC maps years 0–99 to 1900–1999, so year 1 is set explicitly.
const EARLIEST = new Date(0);
EARLIEST.setUTCFullYear(1, 0, 1);
EARLIEST.setUTCHours(0, 0, 0, 0);
const EARLIEST_MS = EARLIEST.getTime();
const LATEST_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export const INSTANT_RANGE_MESSAGE = "must lie between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z (after applying the offset)";

export function isStorableInstant(date: Date): boolean {
  const ms = date.getTime();
  return !Number.isNaN(ms) && ms >= EARLIEST_MS && ms <= LATEST_MS;
}

/** `2026-11-01`, or a full timestamp with an explicit zone (`Z` or `+02:00`): never local time. */
const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-](\d{2}):(\d{2})))?$/;

/**
 * Parses a date or timestamp as the API accepts it. A date without a time means midnight UTC.
 * Returns the instant, or why it is refused: an unparseable or impossible date (`2026-02-31`,
 * which Date.parse would roll over to March 3rd), or one outside the storable range.
 */
export function parseStorableInstant(value: string): { instant: Date } | { problem: string } {
  const text = value.trim();
  const match = ISO_INSTANT.exec(text);
  if (!match) return { problem: "must be an ISO 8601 date (2026-11-01) or timestamp with a zone (2026-11-01T12:00:00Z)" };
  const [year, month, day, hour, minute, second, , offsetHours, offsetMinutes] = match.slice(1).map(Number);
  const calendar = new Date(0);
  calendar.setUTCFullYear(year!, month! - 1, day!);
  const realDate = calendar.getUTCFullYear() === year && calendar.getUTCMonth() === month! - 1 && calendar.getUTCDate() === day;
  const realTime = match[4] === undefined || (hour! < 24 && minute! < 60 && (match[6] === undefined || second! < 60));
  const realOffset = match[8] === undefined || (offsetHours! < 24 && offsetMinutes! < 60);
  const instant = new Date(match[4] === undefined ? `${text}T00:00:00Z` : text);
  if (!realDate || !realTime || !realOffset || Number.isNaN(instant.getTime())) return { problem: `is not a real date: ${text.slice(0, 40)}` };
  if (!isStorableInstant(instant)) return { problem: INSTANT_RANGE_MESSAGE };
  return { instant };
}
