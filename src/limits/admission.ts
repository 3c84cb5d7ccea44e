import type { RateLimiterRes } from "rate-limiter-flexible";
import { OverloadedError, RateLimitedError, type RateLimitWindow } from "../core/errors.js";
import type { Logger } from "../observability/logger.js";
import type { TenantQuota } from "../tenancy/authenticate.js";
import type { TenantContext } from "../core/tenant-context.js";
import { MemoryCounterStore, type CounterStore } from "./counter-store.js";

export interface AdmissionTicket {
  /** The rate-limit window the request was counted in, for the response's `RateLimit-*` headers. */
  rateLimit: RateLimitWindow | undefined;
  release(): Promise<void>;
}

export interface AdmissionOptions {
  /** Requests this instance works on at once, over all tenants; beyond it, shed with 503. */
  maxInFlight: number;
}

/** Tokens are counted in a one-minute window whose own cap is never reached; the plan's limit is compared on admission. */
const TOKEN_COUNTER_POINTS = Number.MAX_SAFE_INTEGER;

/**
 * Request admission: one tenant's burst must not become everyone's latency. In order:
 * 1. a global ceiling per instance sheds load early (503 `overloaded`) instead of queueing without bound;
 * 2. the tenant's tokens in the current minute (plan) — 429 `token_limit` once used up;
 * 3. the tenant's requests per minute (plan), and the key's own if it has one — 429 `rate_limit`;
 * 4. the tenant's requests in flight (plan) — 429 `concurrency_limit`.
 * Counters live in the CounterStore (memory, or Redis shared by all instances). If the shared
 * store fails, admission falls back to this instance's memory rather than refusing everyone.
 */
export class AdmissionController {
  private inFlight = 0;
  private readonly local = new MemoryCounterStore();

  constructor(
    private readonly store: CounterStore,
    private readonly options: AdmissionOptions,
    private readonly logger: Logger,
  ) {}

  async admit(ctx: TenantContext, quota: TenantQuota): Promise<AdmissionTicket> {
    if (this.inFlight >= this.options.maxInFlight) throw new OverloadedError(1);
    // Counted before the first await, so requests arriving together cannot all pass the ceiling.
    this.inFlight++;
    try {
      return await this.admitTenant(ctx, quota);
    } catch (error) {
      this.inFlight--;
      throw error;
    }
  }

  /**
   * Counts tokens a tenant's calls used (settled by metering). Tokens are known only after a call,
   * so the limit refuses the requests that come after the minute's tokens are used up; a request
   * already admitted may take the tenant past it by its own size, never further.
   */
  async recordTokens(tenantId: string, tokens: number): Promise<void> {
    if (tokens <= 0) return;
    await this.withFallback((store) => store.rateLimiter("tokens", TOKEN_COUNTER_POINTS, 60).penalty(`tpm:${tenantId}`, tokens)).catch(
      (error: unknown) => this.logger.warn({ err: error }, "could not count tokens for the tokens/min limit"),
    );
  }

  private async admitTenant(ctx: TenantContext, quota: TenantQuota): Promise<AdmissionTicket> {
    if (quota.tokensPerMinute) {
      const limit = quota.tokensPerMinute;
      const { value: res } = await this.withFallback((store) => store.rateLimiter("tokens", TOKEN_COUNTER_POINTS, 60).get(`tpm:${ctx.tenantId}`));
      if (res && res.consumedPoints >= limit) {
        const resetSec = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
        throw new RateLimitedError("token_limit", resetSec, { limit, remaining: 0, resetSeconds: resetSec });
      }
    }
    // The tenant's window, then the key's own: the client is told of whichever has less left.
    const windows: [string, number | null][] = [
      [`rpm:${ctx.tenantId}`, quota.requestsPerMinute],
      [`rpm-key:${ctx.keyId}`, quota.keyRequestsPerMinute],
    ];
    let tightest: RateLimitWindow | undefined;
    for (const [key, limit] of windows) {
      if (!limit) continue;
      const result = await this.withFallback((store) => consume(store, key, limit));
      const remaining = Math.max(0, result.value.res.remainingPoints);
      const resetSec = Math.max(1, Math.ceil(result.value.res.msBeforeNext / 1000));
      if (tightest === undefined || remaining < tightest.remaining || !result.value.allowed) {
        tightest = { limit, remaining, resetSeconds: resetSec };
      }
      if (!result.value.allowed) throw new RateLimitedError("rate_limit", resetSec, tightest);
    }
    const slotKey = `tenant:${ctx.tenantId}`;
    const max = quota.maxConcurrency;
    // The slot is released in the store that granted it, even if Redis comes or goes meanwhile.
    let slotStore: CounterStore | undefined;
    if (max) {
      const acquired = await this.withFallback((store) => store.acquireSlot(slotKey, max));
      if (!acquired.value) throw new RateLimitedError("concurrency_limit", 1, tightest);
      slotStore = acquired.store;
    }
    let released = false;
    return {
      rateLimit: tightest,
      release: async () => {
        if (released) return;
        released = true;
        this.inFlight--;
        await slotStore?.releaseSlot(slotKey).catch(() => undefined);
      },
    };
  }

  private async withFallback<T>(run: (store: CounterStore) => Promise<T>): Promise<{ value: T; store: CounterStore }> {
    try {
      return { value: await run(this.store), store: this.store };
    } catch (error) {
      if (this.store === this.local) throw error;
      this.logger.warn({ err: error }, "shared admission store failed; using this instance's counters");
      return { value: await run(this.local), store: this.local };
    }
  }
}

async function consume(store: CounterStore, key: string, points: number): Promise<{ allowed: boolean; res: RateLimiterRes }> {
  try {
    return { allowed: true, res: await store.rateLimiter("rate", points, 60).consume(key, 1) };
  } catch (rejection) {
    if (rejection instanceof Error) throw rejection;
    return { allowed: false, res: rejection as RateLimiterRes };
  }
}
