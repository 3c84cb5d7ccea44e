import { RateLimiterMemory } from "rate-limiter-flexible";
import { describe, expect, it } from "vitest";
import { FailedAuthLimiter } from "../../../src/tenancy/failed-auth-limiter.js";

/**
 * The failed-authentication limit per address, and the record of blocked addresses the front door
 * refuses from (http/refusals-on-record.ts): an address is on record only once a counter read found
 * it blocked, for as long as that block lasts, and only that address.
 */
describe("FailedAuthLimiter", () => {
  const make = (maxFailures = 3, windowSec = 60) => {
    let now = Date.now();
    const limiter = new FailedAuthLimiter(new RateLimiterMemory({ points: maxFailures, duration: windowSec }), maxFailures, undefined, () => now);
    return { limiter, advance: (ms: number) => (now += ms) };
  };

  it("blocks an address after its failures, and records the block only once a read finds it", async () => {
    const { limiter } = make(3);
    for (let i = 0; i < 3; i++) {
      expect(await limiter.blockedFor("203.0.113.1")).toBeUndefined();
      await limiter.noteFailure("203.0.113.1");
    }
    expect(limiter.hasBlocksOnRecord()).toBe(false);
    expect(limiter.blockedOnRecord("203.0.113.1"), "not read yet").toBeUndefined();
    const seconds = await limiter.blockedFor("203.0.113.1");
    expect(seconds).toBeGreaterThanOrEqual(59);
    expect(limiter.blockedOnRecord("203.0.113.1")).toBe(seconds);
    expect(limiter.blockedOnRecord("203.0.113.2"), "another address").toBeUndefined();
    expect(await limiter.blockedFor("203.0.113.2")).toBeUndefined();
  });

  it("forgets a recorded block when it ends", async () => {
    const { limiter, advance } = make(1, 10);
    await limiter.noteFailure("198.51.100.7");
    expect(await limiter.blockedFor("198.51.100.7")).toBeGreaterThanOrEqual(9);
    advance(5_000);
    expect(limiter.blockedOnRecord("198.51.100.7")).toBeLessThanOrEqual(5);
    advance(5_100);
    expect(limiter.blockedOnRecord("198.51.100.7")).toBeUndefined();
    expect(limiter.hasBlocksOnRecord()).toBe(false);
  });
});
