import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { BudgetExceededError, FenceError, type ErrorCode } from "../core/errors.js";
import type { AppEnv } from "./types.js";

/** The one place where domain errors become HTTP statuses. */
const STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  unauthorized: 401,
  not_found: 404,
  validation_error: 400,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unprocessable_document: 422,
  budget_exceeded: 402,
  idempotency_conflict: 409,
  job_not_cancellable: 409,
  rate_limited: 429,
  overloaded: 503,
  provider_unavailable: 503,
  feature_disabled: 403,
  tenant_isolation_violation: 500,
  upstream_error: 502,
  not_ready: 503,
  not_implemented: 501,
  internal_error: 500,
};

export function errorBody(c: Context<AppEnv>, code: string, message: string, details?: unknown) {
  return {
    error: { code, message, request_id: c.get("requestId"), ...(details === undefined ? {} : { details }) },
  };
}

/**
 * Records the refusal on the request's outcome (read by the access log and the metrics): the
 * error code, and for a limit decision its reason — admission's (`rate_limit`, `token_limit`,
 * `concurrency_limit`, `overloaded`, from the error's details) or `budget`.
 */
function recordOutcome(c: Context<AppEnv>, code: string, error?: FenceError): void {
  const outcome = c.get("outcome");
  if (!outcome) return; // an error before the request context was set up
  outcome.errorCode = code;
  if (error instanceof BudgetExceededError) outcome.limitReason = "budget";
  else if (error?.code === "rate_limited" || error?.code === "overloaded") {
    const reason = (error.details as { reason?: unknown } | undefined)?.reason;
    if (typeof reason === "string") outcome.limitReason = reason;
  }
}

export function handleError(error: Error, c: Context<AppEnv>): Response {
  if (error instanceof FenceError) {
    const status = STATUS[error.code];
    recordOutcome(c, error.code, error);
    if (status >= 500 && status !== 503) c.get("log")?.error({ err: error, code: error.code }, "request failed");
    for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
    return c.json(errorBody(c, error.code, error.message, error.details), status);
  }
  if (error instanceof HTTPException) {
    // Raised by Hono itself: malformed JSON from a validator, body-limit overflow, …
    const status = error.status as ContentfulStatusCode;
    const code =
      status === 413
        ? "payload_too_large"
        : status === 415
          ? "unsupported_media_type"
          : status === 401
            ? "unauthorized"
            : "validation_error";
    recordOutcome(c, code);
    return c.json(errorBody(c, code, error.message || "Bad request."), status);
  }
  c.get("log")?.error({ err: error }, "unhandled error");
  recordOutcome(c, "internal_error");
  return c.json(errorBody(c, "internal_error", "Internal server error."), 500);
}

export function handleNotFound(c: Context<AppEnv>): Response {
  recordOutcome(c, "not_found");
  return c.json(errorBody(c, "not_found", `No route for ${c.req.method} ${c.req.path}.`), 404);
}
