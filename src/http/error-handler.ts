import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ERROR_CATALOGUE, limitReasonOf } from "../core/error-catalogue.js";
import { FenceError } from "../core/errors.js";
import { errorHeaders } from "./limit-headers.js";
import type { AppEnv } from "./types.js";

/*
 * The one place where domain errors become HTTP answers: the status from the error catalogue, the
 * headers from the error's data (limit-headers.ts), the body from its code, message and details.
 */

export function errorBody(c: Context<AppEnv>, code: string, message: string, details?: unknown) {
  return errorBodyOf(c.get("requestId"), code, message, details);
}

/** An error answer's body: `{ error: { code, message, request_id, details? } }`. */
export function errorBodyOf(requestId: string, code: string, message: string, details?: unknown) {
  return { error: { code, message, request_id: requestId, ...(details === undefined ? {} : { details }) } };
}

/**
 * Records the refusal on the request's outcome (read by the access log and the metrics): the
 * error code, and when a limit refused, which one (the catalogue's reason, as the metrics name it).
 */
function recordOutcome(c: Context<AppEnv>, code: string, error?: FenceError): void {
  const outcome = c.get("outcome");
  if (!outcome) return; // an error before the request context was set up
  outcome.errorCode = code;
  const limitReason = limitReasonOf(error);
  if (limitReason) outcome.limitReason = limitReason;
}

export function handleError(error: Error, c: Context<AppEnv>): Response {
  if (error instanceof FenceError) {
    const status = ERROR_CATALOGUE[error.code].status;
    recordOutcome(c, error.code, error);
    if (status >= 500 && status !== 503) c.get("log")?.error({ err: error, code: error.code }, "request failed");
    for (const [name, value] of Object.entries(errorHeaders(error))) c.header(name, value);
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
