// Shared by the database worker threads (plain JavaScript, as they are; see thread-calls.ts for the
// receiving side, which rebuilds the Error from these fields).

/** The fields of an error worth carrying back: a database error keeps its report (SQLSTATE code, constraint, …) in own fields. */
export function serializeError(error) {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const fields = { name: error.name, message: error.message, stack: error.stack };
  for (const [key, value] of Object.entries(error)) {
    if (["string", "number", "boolean"].includes(typeof value)) fields[key] = value;
  }
  return fields;
}
