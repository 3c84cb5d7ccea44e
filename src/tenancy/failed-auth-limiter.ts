import type { RateLimiterAbstract, RateLimiterRes } from "rate-limiter-flexible";

/** Blocked addresses remembered per instance (a few MB at most). */
const MAX_RECORDED = 50_000;

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
  /**
   * Addresses this instance has found blocked, until their block ends (ms since the epoch): what
   * `blockedOnRecord` answers from without a counter read. Bounded: past MAX_RECORDED, entries
   * that ended are dropped, then the oldest.
   */
  private readonly recorded = new Map<string, number>();
  /** When the last recorded block ends: past it, nothing on record is running. */
  private lastEnd = 0;

  constructor(
    private readonly limiter: RateLimiterAbstract,
    readonly maxFailures: number,
    private readonly onStoreError: (error: unknown) => void = () => undefined,
    private readonly now: () => number = Date.now,
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
    this.record(address, this.now() + state.msBeforeNext);
    return Math.max(1, Math.ceil(state.msBeforeNext / 1000));
  }

  /**
   * Seconds until `address` may try again, from this instance's record of blocks it has seen
   * (`blockedFor` found them), without reading the counter: what lets a flood from a blocked
   * address be refused before anything else is done (http/front-door.ts). A block that another
   * instance found is learnt here at this instance's first counter read for the address.
   */
  /** Whether any recorded block may still be running: when none is, no request need be looked up. */
  hasBlocksOnRecord(): boolean {
    return this.now() < this.lastEnd;
  }

  blockedOnRecord(address: string): number | undefined {
    const until = this.recorded.get(address);
    if (until === undefined) return undefined;
    const left = until - this.now();
    if (left > 0) return Math.max(1, Math.ceil(left / 1000));
    this.recorded.delete(address);
    return undefined;
  }

  private record(address: string, until: number): void {
    this.recorded.delete(address); // re-inserted last: the map's order is the order of recording
    if (this.recorded.size >= MAX_RECORDED) {
      const now = this.now();
      for (const [other, end] of this.recorded) if (end <= now) this.recorded.delete(other);
      if (this.recorded.size >= MAX_RECORDED) this.recorded.delete(this.recorded.keys().next().value!);
    }
    this.recorded.set(address, until);
    this.lastEnd = Math.max(this.lastEnd, until);
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
