import { describe, expect, it } from "vitest";
import { OverloadedError, ProviderUnavailableError, RateLimitedError, UnprocessableDocumentError, UpstreamError, ValidationError } from "../../../src/core/errors.js";
import { failureCode, isRetryable } from "../../../src/jobs/retry-policy.js";

/** An error as a driver reports it: a code on the error, or on one it wraps. */
function coded(code: string, message = "driver error"): Error {
  return Object.assign(new Error(message), { code });
}
function wrapped(cause: unknown): Error {
  return new Error("Failed query: INSERT INTO …", { cause });
}

function stackOverflow(): unknown {
  const recurse = (n: number): number => recurse(n + 1) + 1;
  try {
    recurse(0);
  } catch (error) {
    return error;
  }
  throw new Error("no overflow");
}

describe("job retry policy", () => {
  it("fails deterministic internal errors after one attempt: a stack overflow, a TypeError, a plain Error", () => {
    const overflow = stackOverflow();
    expect(overflow).toBeInstanceOf(RangeError);
    expect(isRetryable(overflow)).toBe(false);
    expect(isRetryable(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBe(false);
    expect(isRetryable(new Error("The job's upload is missing."))).toBe(false);
    expect(isRetryable("a thrown string")).toBe(false);
    expect(failureCode(overflow)).toBe("internal_error");
  });

  it("fails client errors after one attempt", () => {
    expect(isRetryable(new UnprocessableDocumentError("too deeply nested"))).toBe(false);
    expect(isRetryable(new ValidationError("bad"))).toBe(false);
    expect(failureCode(new UnprocessableDocumentError("x"))).toBe("unprocessable_document");
  });

  it("retries what can pass: provider faults, overload, rate limits", () => {
    expect(isRetryable(new UpstreamError("Embedding provider failed: 502"))).toBe(true);
    expect(isRetryable(new ProviderUnavailableError("openai", "circuit_open", 5))).toBe(true);
    expect(isRetryable(new OverloadedError(1))).toBe(true);
    expect(isRetryable(new RateLimitedError("rate_limit", 3))).toBe(true);
  });

  it("retries network and database connection failures, also when a driver or drizzle wraps them", () => {
    expect(isRetryable(coded("ECONNRESET"))).toBe(true);
    expect(isRetryable(new TypeError("fetch failed", { cause: coded("UND_ERR_SOCKET") }))).toBe(true);
    expect(isRetryable(wrapped(coded("57P01", "terminating connection due to administrator command")))).toBe(true);
    expect(isRetryable(wrapped(coded("08006")))).toBe(true);
    expect(isRetryable(wrapped(coded("40P01", "deadlock detected")))).toBe(true);
    expect(isRetryable(wrapped(new Error("Connection terminated unexpectedly")))).toBe(true);
    expect(isRetryable(Object.assign(new Error("The operation timed out."), { name: "TimeoutError" }))).toBe(true);
  });

  it("does not retry database errors that will recur: a constraint, a bad value, a missing column", () => {
    expect(isRetryable(wrapped(coded("23505", "duplicate key value")))).toBe(false);
    expect(isRetryable(wrapped(coded("22P05", "unsupported Unicode escape sequence")))).toBe(false);
    expect(isRetryable(wrapped(coded("42703", "column does not exist")))).toBe(false);
  });
});
