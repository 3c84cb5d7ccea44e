import type { RateLimiterAbstract, RateLimiterRes } from "rate-limiter-flexible";

/**
 * Failed authentications per client address (issue 14, row 14): after `maxFailures` within the
 * limiter's window, the address is refused with 429 before any key is checked, until the window
 * ends. The limiter is the admission counters' (Redis with REDIS_URL, so it holds across
 * instances; memory otherwise). Only failures count, so a client with a valid key is never
 * slowed by its own traffic, and another address is never slowed by this one's.
 *
 * It fails open: if the counter store is down, authentication goes on unlimited rather than
 * refusing every tenant — the key directory still keeps bad keys away from the database.
 */
export class FailedAuthLimiter {
  constructor(
    private readonly limiter: RateLimiterAbstract,
    readonly maxFailures: number,
    private readonly onStoreError: (error: unknown) => void = () => undefined,
  ) {}

  /** Seconds until `address` may try again, or undefined when it is not blocked. */
  async blockedFor(address: string): Promise<number | undefined> {
    let state: RateLimiterRes | null;
    try {
      state = await this.limiter.get(address);
    } catch (error) {
      this.onStoreError(error);
      return undefined;
    }
    if (!state || state.consumedPoints < this.maxFailures) return undefined;
    return Math.max(1, Math.ceil(state.msBeforeNext / 1000));
  }

  async noteFailure(address: string): Promise<void> {
    try {
      await this.limiter.consume(address);
    } catch (rejection) {
      // A RateLimiterRes rejection only says the address is over: that is what blockedFor reads.
      if (rejection instanceof Error) this.onStoreError(rejection);
    }
  }
}
