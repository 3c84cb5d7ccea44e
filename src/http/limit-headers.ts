import { FenceError, RateLimitedError, type RateLimitWindow } from "../core/errors.js";

/**
 * How limits are told to an HTTP client. Lower layers hand over numbers (a window, seconds to
 * wait); the header names and their text form are HTTP's business and live here only.
 */

/** `RateLimit-*` of the window the request was counted in; none when no window counted it. */
export function rateLimitHeaders(window: RateLimitWindow | undefined): Record<string, string> {
  if (!window) return {};
  return {
    "RateLimit-Limit": String(window.limit),
    "RateLimit-Remaining": String(window.remaining),
    "RateLimit-Reset": String(window.resetSeconds),
  };
}

/** The headers of an error's answer: its rate-limit window, and Retry-After when it says when. */
export function errorHeaders(error: FenceError): Record<string, string> {
  const headers = rateLimitHeaders(error instanceof RateLimitedError ? error.rateLimit : undefined);
  if (error.retryAfterSeconds !== undefined) headers["Retry-After"] = String(error.retryAfterSeconds);
  return headers;
}
