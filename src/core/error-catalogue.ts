import { FenceError, RateLimitedError, type ErrorCode } from "./errors.js";

/**
 * What every error code means to each floor that acts on it, as data in one place: the HTTP layer
 * answers with its status, the job runner retries it or not, run records call it refused or
 * failed, and the metrics count it as a limit refusal or not. Each of those used to keep its own
 * list, and the lists drifted apart.
 */

/** The reasons of `fence_limit_refusals_total`: which limit said no. */
export const LIMIT_REASONS = ["rate_limit", "token_limit", "concurrency_limit", "queue_full", "fair_share", "overloaded", "budget_exceeded"] as const;
export type LimitReason = (typeof LIMIT_REASONS)[number];

/** The error itself names the limit (`RateLimitedError.reason`): one code covers several limits. */
export const REASON_OF_THE_ERROR = "reason_of_the_error";

export interface ErrorTraits {
  /** The HTTP status of the answer (rendered by http/error-handler.ts only). */
  readonly status: number;
  /** The same request or job attempt can plausibly pass later, unchanged: a job retries it. */
  readonly retryable: boolean;
  /** A limit or a tenant's setting said no, rather than something failed (a run is `refused`). */
  readonly refusal: boolean;
  /** The `fence_limit_refusals_total` reason, when a limit refused; null for anything else. */
  readonly limitReason: LimitReason | typeof REASON_OF_THE_ERROR | null;
}

/**
 * Complete by construction: a new ErrorCode does not compile until it has its entry here. A budget
 * passes only when it resets (hours away), so a job retrying it would just burn its attempts.
 */
export const ERROR_CATALOGUE = {
  unauthorized:               { status: 401, retryable: false, refusal: false, limitReason: null },
  insufficient_scope:         { status: 403, retryable: false, refusal: true,  limitReason: null },
  tenant_suspended:           { status: 403, retryable: false, refusal: true,  limitReason: null },
  beyond_plan:                { status: 403, retryable: false, refusal: false, limitReason: null },
  not_found:                  { status: 404, retryable: false, refusal: false, limitReason: null },
  validation_error:           { status: 400, retryable: false, refusal: false, limitReason: null },
  payload_too_large:          { status: 413, retryable: false, refusal: false, limitReason: null },
  request_timeout:            { status: 408, retryable: true,  refusal: false, limitReason: null },
  unsupported_media_type:     { status: 415, retryable: false, refusal: false, limitReason: null },
  unprocessable_document:     { status: 422, retryable: false, refusal: false, limitReason: null },
  budget_exceeded:            { status: 402, retryable: false, refusal: true,  limitReason: "budget_exceeded" },
  idempotency_conflict:       { status: 409, retryable: false, refusal: false, limitReason: null },
  job_not_cancellable:        { status: 409, retryable: false, refusal: false, limitReason: null },
  rate_limited:               { status: 429, retryable: true,  refusal: true,  limitReason: REASON_OF_THE_ERROR },
  overloaded:                 { status: 503, retryable: true,  refusal: true,  limitReason: "overloaded" },
  provider_unavailable:       { status: 503, retryable: true,  refusal: false, limitReason: null },
  feature_disabled:           { status: 403, retryable: false, refusal: true,  limitReason: null },
  tenant_isolation_violation: { status: 500, retryable: false, refusal: false, limitReason: null },
  upstream_error:             { status: 502, retryable: true,  refusal: false, limitReason: null },
  not_ready:                  { status: 503, retryable: true,  refusal: false, limitReason: null },
  not_implemented:            { status: 501, retryable: false, refusal: false, limitReason: null },
  internal_error:             { status: 500, retryable: false, refusal: false, limitReason: null },
} as const satisfies Record<ErrorCode, ErrorTraits>;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CATALOGUE, code);
}

/** The traits of what was thrown: a Fence error's code's, anything else's those of `internal_error`. */
export function traitsOf(error: unknown): ErrorTraits {
  return ERROR_CATALOGUE[error instanceof FenceError ? error.code : "internal_error"];
}

/** Which limit refused, if a limit did (the `fence_limit_refusals_total` reason). */
export function limitReasonOf(error: unknown): LimitReason | undefined {
  const reason = traitsOf(error).limitReason;
  if (reason !== REASON_OF_THE_ERROR) return reason ?? undefined;
  return error instanceof RateLimitedError ? error.reason : undefined;
}
