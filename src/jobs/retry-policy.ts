import { ERROR_CATALOGUE } from "../core/error-catalogue.js";
import { FenceError } from "../core/errors.js";

/**
 * Which failed job attempts are worth another attempt. A retry costs the tenant a queue slot and
 * the platform a worker, so only failures that can plausibly pass on their own are retried:
 * a provider or network fault, an overloaded or paused provider, a lost or busy database
 * connection. Anything deterministic — a client error, an exhausted budget, or an internal error
 * such as a stack overflow on a pathological document (RangeError) or a TypeError — fails
 * after one attempt: running the same input through the same code again gives the same result.
 */

/** Node and undici network failures (a connection refused, reset or timed out; DNS briefly away). */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
]);

/**
 * Postgres SQLSTATEs that pass on retry: connection exceptions (08), serialization failure and
 * deadlock (40001, 40P01), insufficient resources (53), operator intervention such as a restart
 * or a cancelled statement (57P01–57P05, 57014), lock not available (55P03), system I/O (58).
 */
function transientSqlState(state: string): boolean {
  return (
    state.startsWith("08") ||
    state.startsWith("53") ||
    state.startsWith("58") ||
    state.startsWith("57P") ||
    ["40001", "40P01", "55P03", "57014"].includes(state)
  );
}

/**
 * node-postgres reports a dropped or unobtainable connection as a plain Error without a code;
 * its messages are the only signal (matched on the driver's fixed wording, not on tenant text).
 */
const DRIVER_CONNECTION_MESSAGE = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;

/** True when the failure can plausibly pass on another attempt (see the module comment). */
export function isRetryable(error: unknown): boolean {
  // A Fence error says itself whether its condition passes (the catalogue's `retryable`).
  if (error instanceof FenceError) return ERROR_CATALOGUE[error.code].retryable;
  // Drivers and drizzle wrap the error that says what happened: look down the cause chain.
  for (let e: unknown = error, depth = 0; e && typeof e === "object" && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown };
    if (e instanceof FenceError) return ERROR_CATALOGUE[e.code].retryable;
    if (typeof code === "string" && (NETWORK_CODES.has(code) || (/^[0-9A-Z]{5}$/.test(code) && transientSqlState(code)))) return true;
    // A fetch or call that timed out (AbortSignal.timeout) may well finish the next time.
    if (name === "TimeoutError") return true;
    if (typeof message === "string" && DRIVER_CONNECTION_MESSAGE.test(message)) return true;
  }
  return false;
}

/** The code a failed job is recorded with: a Fence error's own, anything else `internal_error`. */
export function failureCode(error: unknown): string {
  return error instanceof FenceError ? error.code : "internal_error";
}

/** Exponential backoff with jitter: base · 2^(attempt−1), capped at a minute, times 0.5–1. */
export function backoffMs(baseMs: number, attempt: number): number {
  const ceiling = Math.min(60_000, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * (0.5 + Math.random() * 0.5));
}
