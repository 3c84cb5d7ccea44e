import { DrizzleQueryError } from "drizzle-orm";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import pg from "pg";
import { describe, expect, it } from "vitest";
import {
  FenceError,
  NotFoundError,
  NotReadyError,
  OverloadedError,
  PayloadTooLargeError,
  RateLimitedError,
  TenantIsolationError,
  UnauthorizedError,
  UnprocessableDocumentError,
  UnsupportedMediaTypeError,
  UpstreamError,
  ValidationError,
} from "../../../src/core/errors.js";
import { handleError, handleNotFound } from "../../../src/http/error-handler.js";
import type { AppEnv } from "../../../src/http/types.js";
import { createLogger } from "../../../src/observability/logger.js";
import { MAX_LOG_LINE_BYTES } from "../../../src/observability/log-value-bounds.js";
import type { ErrorBody } from "../../support/api-types.js";

function appThrowing(error: Error, logLines?: string[]) {
  const app = new Hono<AppEnv>();
  const log = logLines && createLogger("info", { write: (line: string) => void logLines.push(line) }).child({ request_id: "req-42" });
  app.use("*", async (c, next) => {
    c.set("requestId", "req-42");
    if (log) c.set("log", log);
    await next();
  });
  app.onError(handleError);
  app.notFound(handleNotFound);
  app.get("/boom", () => {
    throw error;
  });
  return app;
}

describe("error mapping", () => {
  it.each([
    [new UnauthorizedError(), 401, "unauthorized"],
    [new NotFoundError("Document"), 404, "not_found"],
    [new ValidationError("bad"), 400, "validation_error"],
    [new PayloadTooLargeError(10), 413, "payload_too_large"],
    [new UnsupportedMediaTypeError("no"), 415, "unsupported_media_type"],
    [new UnprocessableDocumentError("no"), 422, "unprocessable_document"],
    [new TenantIsolationError("no"), 500, "tenant_isolation_violation"],
    [new UpstreamError("no"), 502, "upstream_error"],
    [new NotReadyError("no"), 503, "not_ready"],
    [new HTTPException(415, { message: "Unsupported Media Type" }), 415, "unsupported_media_type"],
    [new HTTPException(400, { message: "Malformed JSON in request body" }), 400, "validation_error"],
  ] as [Error, number, string][])("%s → %i %s", async (error, status, code) => {
    const res = await appThrowing(error).request("/boom");
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ error: { code, request_id: "req-42" } });
  });

  it("renders a limit's numbers as RateLimit-* and Retry-After headers, and only a limit's", async () => {
    const limited = await appThrowing(new RateLimitedError("rate_limit", 7, { limit: 10, remaining: 0, resetSeconds: 7 })).request("/boom");
    expect(limited.status).toBe(429);
    expect(Object.fromEntries(limited.headers)).toMatchObject({
      "ratelimit-limit": "10",
      "ratelimit-remaining": "0",
      "ratelimit-reset": "7",
      "retry-after": "7",
    });
    expect(await limited.json()).toMatchObject({ error: { code: "rate_limited", details: { reason: "rate_limit", retry_after_seconds: 7 } } });
    const overloaded = await appThrowing(new OverloadedError(1)).request("/boom");
    expect(overloaded.status).toBe(503);
    expect(overloaded.headers.get("retry-after")).toBe("1");
    expect(overloaded.headers.get("ratelimit-limit")).toBeNull();
    expect((await appThrowing(new ValidationError("bad")).request("/boom")).headers.get("retry-after")).toBeNull();
  });

  it("hides the message of an unexpected error behind a generic 500", async () => {
    const res = await appThrowing(new Error("connection string postgres://secret")).request("/boom");
    expect(res.status).toBe(500);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe("internal_error");
    expect(JSON.stringify(body)).not.toContain("secret");
  });

  it("includes validation details when the error has them", async () => {
    const res = await appThrowing(new ValidationError("bad", { fields: [{ field: "k", message: "too big" }] })).request("/boom");
    expect(await res.json()).toMatchObject({ error: { details: { fields: [{ field: "k" }] } } });
  });

  it("answers unknown routes with a JSON 404", async () => {
    const res = await appThrowing(new FenceError("internal_error", "x")).request("/nope");
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: "not_found" } });
  });

  it("logs a database error by its code and constraint, never the statement, its parameters or the key in detail", async () => {
    // What drizzle throws for a failed insert on node-postgres: the document is a parameter, and
    // Postgres quotes the key's values in `detail`.
    const document = `Confidential memo Gannetfold-41c2 ${"lorem ipsum ".repeat(20_000)}`;
    const driverError = Object.assign(new pg.DatabaseError('duplicate key value violates unique constraint "documents_tenant_source_idx"', 200, "error"), {
      severity: "ERROR",
      code: "23505",
      detail: "Key (tenant_id, source_id)=(t-1, Gannetfold-41c2) already exists.",
      table: "documents",
      constraint: "documents_tenant_source_idx",
    });
    const error = new DrizzleQueryError("insert into documents (tenant_id, source_id, text) values ($1, $2, $3)", ["t-1", "Gannetfold-41c2", document], driverError);
    const lines: string[] = [];
    const res = await appThrowing(error, lines).request("/boom");
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain("Gannetfold");
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain("Gannetfold");
    expect(lines[0]).not.toContain("insert into");
    expect(Buffer.byteLength(lines[0]!)).toBeLessThan(MAX_LOG_LINE_BYTES);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      request_id: "req-42",
      err: { type: "DatabaseError", code: "23505", constraint: "documents_tenant_source_idx", table: "documents" },
    });
  });
});
