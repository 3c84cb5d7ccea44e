import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { describe, expect, it } from "vitest";
import {
  FenceError,
  NotFoundError,
  NotReadyError,
  PayloadTooLargeError,
  TenantIsolationError,
  UnauthorizedError,
  UnprocessableDocumentError,
  UnsupportedMediaTypeError,
  UpstreamError,
  ValidationError,
} from "../../src/errors.js";
import { handleError, handleNotFound } from "../../src/http/error-handler.js";
import type { AppEnv } from "../../src/http/types.js";

function appThrowing(error: Error) {
  const app = new Hono<AppEnv>();
  app.use("*", async (c, next) => {
    c.set("requestId", "req-42");
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

  it("hides the message of an unexpected error behind a generic 500", async () => {
    const res = await appThrowing(new Error("connection string postgres://secret")).request("/boom");
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: { code: string; message: string } };
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
});
