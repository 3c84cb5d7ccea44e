import { describe, expect, it } from "vitest";
import { RateLimitedError, withoutStack } from "../../../src/core/errors.js";

describe("withoutStack", () => {
  it("builds the same error with no stack frames, and leaves stack capture on for every other error", () => {
    const limit = Error.stackTraceLimit;
    const bare = withoutStack(() => new RateLimitedError("rate_limit", 7, { limit: 60, remaining: 0, resetSeconds: 7 }));
    expect(bare).toBeInstanceOf(RateLimitedError);
    expect(bare).toMatchObject({ code: "rate_limited", reason: "rate_limit", retryAfterSeconds: 7, details: { reason: "rate_limit", retry_after_seconds: 7 } });
    expect(bare.stack).not.toMatch(/\n\s+at /);
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new RateLimitedError("rate_limit", 7).stack).toMatch(/\n\s+at /);
  });

  it("restores stack capture when building throws", () => {
    const limit = Error.stackTraceLimit;
    expect(() =>
      withoutStack(() => {
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(Error.stackTraceLimit).toBe(limit);
  });
});
