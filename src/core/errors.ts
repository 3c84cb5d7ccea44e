/**
 * Domain errors. Lower layers throw these with data only (a code, a message for the client, details,
 * when to retry); what each code means — status, retryable, refusal — is in `error-catalogue.ts`,
 * and only `http/error-handler.ts` turns an error into a status, headers and the
 * `{error:{code,message,request_id}}` body.
 */
export type ErrorCode =
  | "unauthorized"
  | "insufficient_scope"
  | "tenant_suspended"
  | "beyond_plan"
  | "not_found"
  | "validation_error"
  | "payload_too_large"
  | "request_timeout"
  | "unsupported_media_type"
  | "unprocessable_document"
  | "budget_exceeded"
  | "idempotency_conflict"
  | "job_not_cancellable"
  | "rate_limited"
  | "overloaded"
  | "provider_unavailable"
  | "feature_disabled"
  | "tenant_isolation_violation"
  | "upstream_error"
  | "not_ready"
  | "not_implemented"
  | "internal_error";

export class FenceError extends Error {
  /** When another attempt may pass, for errors that know (sent over HTTP as Retry-After). */
  readonly retryAfterSeconds?: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** One message for every credential failure, so the answer reveals nothing about why. */
export class UnauthorizedError extends FenceError {
  constructor() {
    super("unauthorized", "Missing or invalid API key.");
  }
}

/**
 * A real key whose time is up: past its `expires_at`, or a secret replaced by a rotation whose
 * grace period has ended. Only its holder can see this message, and it tells them nothing they do
 * not hold; an unknown or revoked key still gets the one message above.
 */
export class KeyExpiredError extends FenceError {
  constructor(why: "expired" | "rotated" = "expired") {
    super("unauthorized", why === "expired" ? "The API key has expired." : "The API key was rotated and its grace period has ended.");
  }
}

/** The key is valid but was not made for this route: the scope it needs is named. */
export class InsufficientScopeError extends FenceError {
  constructor(readonly requiredScope: string) {
    super("insufficient_scope", `This key lacks the '${requiredScope}' scope this route needs.`, { required_scope: requiredScope });
  }
}

/**
 * The key is real and valid, but the platform operator has suspended its tenant: nothing the key
 * asks for is done until the tenant is resumed. Told apart from 401 because its holder can do
 * nothing about it but ask the operator; it is answered only after the key has verified (an
 * unknown, revoked or expired key still gets its 401), so it tells no one else anything.
 */
export class TenantSuspendedError extends FenceError {
  constructor() {
    super("tenant_suspended", "This tenant is suspended by the platform operator; its keys authenticate nothing until it is resumed.");
  }
}

/**
 * A tenant's owner asked for more than its plan gives (a setting, a flag or a key limit), or for a
 * setting only the platform admin changes. Nothing was changed.
 */
export class BeyondPlanError extends FenceError {
  constructor(field: string, message: string, details: Record<string, unknown> = {}) {
    super("beyond_plan", message, { field, ...details });
  }
}

/** Used for missing resources and for other tenants' resources alike (invariant I6). */
export class NotFoundError extends FenceError {
  constructor(resource: string) {
    super("not_found", `${resource} not found.`);
  }
}

export class ValidationError extends FenceError {
  constructor(message: string, details?: unknown) {
    super("validation_error", message, details);
  }
}

export class PayloadTooLargeError extends FenceError {
  /** `field`: where a string over a character limit is, when it is not a document's text. */
  constructor(limit: number, unit: "bytes" | "characters" = "bytes", field?: string) {
    super(
      "payload_too_large",
      unit === "bytes"
        ? `Request body exceeds the limit of ${limit} bytes.`
        : field === undefined || field === "text" || field.endsWith(".text")
          ? `The document's text exceeds the limit of ${limit} characters.`
          : `The field ${field} exceeds the limit of ${limit} characters.`,
    );
  }
}

/**
 * A request body that did not arrive in time once the instance was ready to read it: a client
 * sending slowly must not hold the few places of large bodies (http/middleware/request-body.ts).
 */
export class RequestTimeoutError extends FenceError {
  constructor(seconds: number) {
    super("request_timeout", `The request body did not arrive within ${seconds} s of the service starting to read it; send it faster or in smaller parts.`, {
      limit_seconds: seconds,
    });
  }
}

export class UnsupportedMediaTypeError extends FenceError {
  constructor(message: string) {
    super("unsupported_media_type", message);
  }
}

export class UnprocessableDocumentError extends FenceError {
  constructor(message: string) {
    super("unprocessable_document", message);
  }
}

/**
 * A chunk of one tenant was about to reach another tenant's request. This is a bug or an attack;
 * the request is aborted and a security event is logged (invariant I4).
 */
export class TenantIsolationError extends FenceError {
  constructor(message: string) {
    super("tenant_isolation_violation", message);
  }
}

/**
 * The request would take the tenant past a hard budget cap. Refused before any provider call, with
 * the limit, what is used and held, and when the budget resets: never a silent overage.
 */
export class BudgetExceededError extends FenceError {
  constructor(
    readonly budget: string,
    readonly status: { limit: number | null; used: number; reserved: number; resets_at: string },
    readonly plan: string,
    /** Set when the cap is the calling API key's own rather than its tenant's plan's. */
    readonly keyId?: string,
  ) {
    const whose = keyId === undefined ? `budget of plan '${plan}'` : `cap of this API key`;
    super("budget_exceeded", `The ${budget.replaceAll("_", " ")} ${whose} is exhausted; it resets at ${status.resets_at}.`, {
      budget,
      budget_of: keyId === undefined ? "plan" : "key",
      ...(keyId === undefined ? {} : { key_id: keyId }),
      plan,
      limit: status.limit,
      used: status.used,
      reserved: status.reserved,
      resets_at: status.resets_at,
    });
  }
}

export class IdempotencyConflictError extends FenceError {
  constructor(state: "completed" | "in_progress" | "different_request") {
    super(
      "idempotency_conflict",
      state === "completed"
        ? "A request with this Idempotency-Key has already completed and was charged; use a new key for a new request."
        : state === "in_progress"
          ? "A request with this Idempotency-Key is still in progress."
          : "This Idempotency-Key was used for a different request; use a new key for a new request.",
    );
  }
}

/** Only a queued job can be cancelled; one that runs or has ended answers 409 with its status. */
export class JobNotCancellableError extends FenceError {
  constructor(status: string) {
    super("job_not_cancellable", `The job is ${status}; only a queued job can be cancelled.`, { status });
  }
}

/** A platform feature this runtime does not have (e.g. Prometheus metrics on Workers). */
export class NotAvailableOnRuntimeError extends FenceError {
  constructor(feature: string, runtime: string) {
    super("not_implemented", `${feature} is not available on ${runtime}.`);
  }
}

/** A feature the tenant's configuration turns off (e.g. `chat.streaming`). */
export class FeatureDisabledError extends FenceError {
  constructor(feature: string) {
    super("feature_disabled", `The feature '${feature}' is disabled for this tenant.`);
  }
}

export type RateLimitReason = "rate_limit" | "token_limit" | "concurrency_limit" | "queue_full" | "fair_share";

/** A rate-limit window as the client is told of it (over HTTP: the RateLimit-* headers). */
export interface RateLimitWindow {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

/** The tenant is over one of its admission limits; `reason` says which, `retryAfterSeconds` when. */
export class RateLimitedError extends FenceError {
  constructor(
    readonly reason: RateLimitReason,
    override readonly retryAfterSeconds: number,
    /** The window the request was counted in, when a windowed limit counted it. */
    readonly rateLimit?: RateLimitWindow,
  ) {
    super(
      "rate_limited",
      reason === "concurrency_limit"
        ? "Too many requests of this tenant are in progress; retry when one has finished."
        : reason === "token_limit"
          ? "The tenant's tokens-per-minute limit is used up; retry after the indicated time."
          : reason === "queue_full"
            ? "The tenant's queue of unfinished jobs is full; retry when some have finished."
            : reason === "fair_share"
              ? "The instance is busy and this tenant has more requests waiting than its share allows; retry shortly."
              : "The request rate limit is reached; retry after the indicated time.",
      { reason, retry_after_seconds: retryAfterSeconds },
    );
  }
}

/**
 * An error built without a stack trace. For refusals answered by the thousand a second: capturing
 * the (async) stack is a tenth of such a refusal's cost, and a 4xx's stack is never logged.
 */
export function withoutStack<E extends Error>(make: () => E): E {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** This instance is saturated and sheds load early rather than queueing without bound. */
export class OverloadedError extends FenceError {
  constructor(override readonly retryAfterSeconds: number) {
    super("overloaded", "The service is at capacity; retry shortly.", { reason: "overloaded", retry_after_seconds: retryAfterSeconds });
  }
}

/** A provider's breaker is open or its lane is full: failing fast beats piling up timeouts. */
export class ProviderUnavailableError extends FenceError {
  constructor(
    provider: string,
    reason: "circuit_open" | "lane_saturated",
    override readonly retryAfterSeconds: number,
  ) {
    super(
      "provider_unavailable",
      reason === "circuit_open"
        ? `The ${provider} provider is failing repeatedly; requests to it are paused briefly.`
        : `The ${provider} provider is at its concurrency limit; retry shortly.`,
      { provider, reason, retry_after_seconds: retryAfterSeconds },
    );
  }
}

export class UpstreamError extends FenceError {
  constructor(message: string) {
    super("upstream_error", message);
  }
}

export class NotReadyError extends FenceError {
  constructor(message: string) {
    super("not_ready", message);
  }
}

/** An error as a tenant may read it later: on a job, its steps, a run record, the usage ledger. */
export interface PublicError {
  code: ErrorCode;
  message: string;
}

/** What a tenant reads for any error that is not a FenceError: its detail goes to the log only. */
export const INTERNAL_ERROR_MESSAGE = "Internal error.";

/**
 * A Fence error keeps its code and message (written for the client). Anything else is internal,
 * and its message may hold SQL and the statement's parameters (a database error), a stack overflow
 * or a library's wording: the tenant gets `internal_error` and a fixed message, and the error
 * itself is logged with the request or job id.
 */
export function publicErrorOf(error: unknown): PublicError {
  if (error instanceof FenceError) return { code: error.code, message: error.message };
  return { code: "internal_error", message: INTERNAL_ERROR_MESSAGE };
}
