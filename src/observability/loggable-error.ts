/**
 * What of an error may reach a log line. An error is turned into a plain record of chosen fields
 * here; the log-value bounds then cut and mask its strings like any others.
 *
 * Database errors are the reason this exists. Their text holds the values of the failed statement:
 * drizzle's wrapper says "Failed query: <sql> params: <every parameter>" (a 224 KB document became
 * a 3.9 MB line of decimal bytes), and it keeps `query` and `params` as fields; the driver's own
 * error has them too on PGlite, and Postgres puts values in `message` ("invalid input syntax for
 * type integer: "…""), `detail` ("Key (tenant_id, source_id)=(…)") and `where` ("JSON data, line
 * 1: …"). So a database error is logged by its SQLSTATE code and the names of what it hit
 * (constraint, table, column, routine) — enough to find the cause, and never a value.
 */

export interface LoggedError {
  type: string;
  message: string;
  stack?: string;
  cause?: LoggedError | string;
  [field: string]: unknown;
}

/**
 * The fields of a Postgres error report (node-postgres' `DatabaseError`; PGlite's errors carry the
 * same) that name things rather than quote values.
 */
const DATABASE_FIELDS = {
  code: "code",
  severity: "severity",
  constraint: "constraint",
  schema: "schema",
  table: "table",
  column: "column",
  dataType: "data_type",
  routine: "routine",
} as const;

/** Common SQLSTATE condition names, so a reader need not look codes up. */
const CONDITION_NAMES: Record<string, string> = {
  "22001": "string_data_right_truncation",
  "22007": "invalid_datetime_format",
  "22008": "datetime_field_overflow",
  "22021": "character_not_in_repertoire",
  "22P02": "invalid_text_representation",
  "22P05": "untranslatable_character",
  "23502": "not_null_violation",
  "23503": "foreign_key_violation",
  "23505": "unique_violation",
  "23514": "check_violation",
  "25P02": "in_failed_sql_transaction",
  "40001": "serialization_failure",
  "40P01": "deadlock_detected",
  "42501": "insufficient_privilege",
  "53300": "too_many_connections",
  "57014": "query_canceled",
};

/**
 * Own fields of other errors that are never logged: the statement and its values (a driver or ORM
 * wrapper may keep them under any of these names), and the free-text fields of a database report.
 */
const VALUE_FIELDS = new Set([
  "query",
  "params",
  "parameters",
  "values",
  "sql",
  "queryOptions",
  "detail",
  "where",
  "hint",
  "internalQuery",
  "body",
  "input",
  "payload",
  "text",
]);

const SQLSTATE = /^[0-9A-Z]{5}$/;
/** How far causes are followed: a chain is a few links in practice, a cycle is not followed at all. */
const MAX_CAUSES = 4;

type ErrorFields = Record<string, unknown>;

/** A Postgres error report: a five-character SQLSTATE `code` and a `severity`, whoever threw it. */
export function isDatabaseError(value: unknown): value is ErrorFields {
  if (typeof value !== "object" || value === null) return false;
  const { code, severity } = value as ErrorFields;
  return typeof code === "string" && SQLSTATE.test(code) && typeof severity === "string";
}

/** The database error in `error` or its chain of causes (drizzle wraps the driver's). */
export function findDatabaseError(error: unknown): ErrorFields | undefined {
  let current: unknown = error;
  for (let i = 0; i <= MAX_CAUSES && typeof current === "object" && current !== null; i++) {
    if (isDatabaseError(current)) return current;
    current = (current as ErrorFields).cause;
  }
  return undefined;
}

/** A wrapper that quotes its statement (drizzle's DrizzleQueryError): its message is not logged. */
function quotesStatement(error: ErrorFields): boolean {
  return typeof error.query === "string" || (typeof error.message === "string" && error.message.startsWith("Failed query"));
}

/** The `at …` frames of a stack without its first lines, which repeat the message. */
function framesOnly(stack: unknown): string | undefined {
  if (typeof stack !== "string") return undefined;
  const frames = stack.split("\n").filter((line) => /^\s+at /.test(line));
  return frames.length > 0 ? frames.join("\n") : undefined;
}

function typeOf(error: object): string {
  const ctor = (error as { constructor?: { name?: unknown } }).constructor;
  const name = typeof ctor?.name === "string" && ctor.name.length > 1 ? ctor.name : (error as ErrorFields).name;
  return typeof name === "string" && name !== "" ? name : "Error";
}

function databaseRecord(db: ErrorFields, stack: unknown): LoggedError {
  const code = db.code as string;
  const record: LoggedError = {
    type: "DatabaseError",
    message: `Database error ${code}${CONDITION_NAMES[code] ? ` (${CONDITION_NAMES[code]})` : ""}${typeof db.constraint === "string" ? ` on ${db.constraint}` : ""}.`,
  };
  for (const [from, to] of Object.entries(DATABASE_FIELDS)) {
    const value = db[from];
    if (typeof value === "string" && value !== "") record[to] = value;
  }
  const frames = framesOnly(stack);
  if (frames) record.stack = frames;
  return record;
}

function loggable(error: ErrorFields, causesLeft: number, seen: Set<object>): LoggedError {
  seen.add(error);
  const database = findDatabaseError(error);
  // The wrapper's frames say where in Fence the query ran; the driver's say where in the driver.
  if (database) return databaseRecord(database, error.stack);
  if (quotesStatement(error)) {
    const record: LoggedError = { type: typeOf(error), message: "Failed query." };
    const frames = framesOnly(error.stack);
    if (frames) record.stack = frames;
    return withCause(record, error, causesLeft, seen);
  }
  const record: LoggedError = { type: typeOf(error), message: typeof error.message === "string" ? error.message : String(error.message) };
  if (typeof error.stack === "string") record.stack = error.stack;
  for (const [key, value] of Object.entries(error)) {
    if (key === "message" || key === "stack" || key === "cause" || VALUE_FIELDS.has(key)) continue;
    // Primitive fields (a code, a status) are kept; objects are not: a request, a response or a
    // row hanging off an error is how whole bodies reach a log.
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") record[key] = value;
    else if (typeof value === "bigint") record[key] = value.toString();
  }
  return withCause(record, error, causesLeft, seen);
}

function withCause(record: LoggedError, error: ErrorFields, causesLeft: number, seen: Set<object>): LoggedError {
  const cause = error.cause;
  if (cause === undefined || cause === null) return record;
  if (typeof cause !== "object") record.cause = String(cause);
  else if (seen.has(cause) || causesLeft <= 0) record.cause = "[cause not followed]";
  else record.cause = loggable(cause as ErrorFields, causesLeft - 1, seen);
  return record;
}

/**
 * The record of `error` that a log may hold: type, message, stack, primitive own fields and the
 * chain of causes — except that a database error (or a wrapper of one) gives only its code and
 * names, and a wrapper that quotes its statement gives neither message nor statement. Strings are
 * left as they are: the logger bounds and masks them with every other string of the line.
 */
export function loggableError(error: object): LoggedError {
  return loggable(error as ErrorFields, MAX_CAUSES, new Set());
}
