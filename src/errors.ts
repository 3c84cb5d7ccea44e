/**
 * Domain errors. Lower layers throw these; only `http/error-handler.ts` turns them into status
 * codes and the `{error:{code,message,request_id}}` body.
 */
export type ErrorCode =
  | "unauthorized"
  | "not_found"
  | "validation_error"
  | "payload_too_large"
  | "unsupported_media_type"
  | "unprocessable_document"
  | "tenant_isolation_violation"
  | "upstream_error"
  | "not_ready"
  | "internal_error";

export class FenceError extends Error {
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
  constructor(limitBytes: number) {
    super("payload_too_large", `Request body exceeds the limit of ${limitBytes} bytes.`);
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
