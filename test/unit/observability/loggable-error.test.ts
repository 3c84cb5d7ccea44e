import { DrizzleQueryError } from "drizzle-orm";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../../src/core/errors.js";
import { findDatabaseError, isDatabaseError, loggableError } from "../../../src/observability/loggable-error.js";

const CANARY = "Kestrelwick-7f3e9a";

/** A Postgres unique violation as node-postgres reports it, quoting the key in `detail`. */
function uniqueViolation(): pg.DatabaseError {
  const error = new pg.DatabaseError('duplicate key value violates unique constraint "documents_tenant_source_idx"', 180, "error");
  Object.assign(error, {
    severity: "ERROR",
    code: "23505",
    detail: `Key (tenant_id, source_id)=(0b6f…, ${CANARY}) already exists.`,
    schema: "public",
    table: "documents",
    constraint: "documents_tenant_source_idx",
    routine: "_bt_check_unique",
    where: `JSON data, line 1: ${CANARY}`,
  });
  return error;
}

/** Drizzle's wrapper: the statement and every parameter, in its message and as fields. */
function wrapped(cause: unknown): DrizzleQueryError {
  return new DrizzleQueryError("insert into documents (tenant_id, source_id, text) values ($1, $2, $3)", ["t", CANARY, `the document ${CANARY}`], cause as Error);
}

describe("loggableError", () => {
  it("recognises a database error by its SQLSTATE code and severity, and finds it under drizzle's wrapper", () => {
    expect(isDatabaseError(uniqueViolation())).toBe(true);
    expect(isDatabaseError(new Error("23505"))).toBe(false);
    expect(isDatabaseError(Object.assign(new Error("x"), { code: "ECONNRESET", severity: "ERROR" }))).toBe(false);
    expect(findDatabaseError(wrapped(uniqueViolation()))?.code).toBe("23505");
  });

  it("logs a database error by code and the names of what it hit, never its message, detail or where", () => {
    const record = loggableError(uniqueViolation());
    expect(record).toMatchObject({
      type: "DatabaseError",
      code: "23505",
      severity: "ERROR",
      constraint: "documents_tenant_source_idx",
      table: "documents",
      routine: "_bt_check_unique",
    });
    expect(record.message).toBe("Database error 23505 (unique_violation) on documents_tenant_source_idx.");
    expect(JSON.stringify(record)).not.toContain(CANARY);
    expect(record).not.toHaveProperty("detail");
    expect(record).not.toHaveProperty("where");
  });

  it("logs drizzle's wrapper as the database error inside it, with the wrapper's frames and neither statement nor parameters", () => {
    const error = wrapped(uniqueViolation());
    expect(error.message).toContain(CANARY); // what used to reach the log
    const record = loggableError(error);
    expect(record).toMatchObject({ type: "DatabaseError", code: "23505", constraint: "documents_tenant_source_idx" });
    const text = JSON.stringify(record);
    for (const leak of [CANARY, "insert into", "params"]) expect(text).not.toContain(leak);
    expect(record.stack).toMatch(/^\s+at /);
  });

  it("drops the message of a wrapper that quotes its statement even without a database error inside", () => {
    const record = loggableError(wrapped(new Error("could not serialise parameter")));
    expect(record).toMatchObject({ type: "DrizzleQueryError", message: "Failed query.", cause: { message: "could not serialise parameter" } });
    expect(JSON.stringify(record)).not.toContain(CANARY);
  });

  it("keeps an ordinary error's type, message, stack, primitive fields and causes, but no statement or body fields", () => {
    const cause = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    const error = Object.assign(new TypeError("provider failed", { cause }), {
      status: 502,
      retryable: true,
      body: { text: CANARY },
      params: [CANARY],
      response: { data: CANARY },
    });
    const record = loggableError(error);
    expect(record).toMatchObject({ type: "TypeError", message: "provider failed", status: 502, retryable: true });
    expect(record.cause).toMatchObject({ type: "Error", message: "socket hang up", code: "ECONNRESET" });
    expect(record.stack).toContain("provider failed");
    expect(JSON.stringify(record)).not.toContain(CANARY);
  });

  it("keeps a Fence error's code and message", () => {
    expect(loggableError(new ValidationError("title: too long"))).toMatchObject({ type: "ValidationError", code: "validation_error", message: "title: too long" });
  });

  it("stops at a cycle of causes", () => {
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(loggableError(a)).toMatchObject({ message: "a", cause: { message: "b", cause: "[cause not followed]" } });
  });
});
