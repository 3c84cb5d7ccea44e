import type { RateLimiterRes } from "rate-limiter-flexible";
import { OverloadedError, RateLimitedError } from "../errors.js";
import type { Logger } from "../observability/logger.js";
import type { TenantQuota } from "../tenancy/authenticate.js";
import type { TenantContext } from "../tenancy/tenant-context.js";
import { MemoryCounterStore, type CounterStore } from "./counter-store.js";

export interface AdmissionTicket {
  /** `RateLimit-*` headers to put on the response. */
  headers: Record<string, string>;
  release(): Promise<void>;
}

export interface AdmissionOptions {
  /** Requests this instance works on at once, over all tenants; beyond it, shed with 503. */
  maxInFlight: number;
}

/**
 * Request admission: one tenant's burst must not become everyone's latency. In order:
 * 1. a global ceiling per instance sheds load early (503 `overloaded`) instead of queueing without bound;
 * 2. the tenant's requests per minute (plan) — 429 `rate_limit`;
 * 3. the tenant's requests in flight (plan) — 429 `concurrency_limit`.
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

  private async admitTenant(ctx: TenantContext, quota: TenantQuota): Promise<AdmissionTicket> {
    const headers: Record<string, string> = {};
    if (quota.requestsPerMinute) {
      const limit = quota.requestsPerMinute;
      const result = await this.withFallback((store) => consume(store, `rpm:${ctx.tenantId}`, limit));
      const resetSec = Math.max(1, Math.ceil(result.value.res.msBeforeNext / 1000));
      headers["RateLimit-Limit"] = String(limit);
      headers["RateLimit-Remaining"] = String(Math.max(0, result.value.res.remainingPoints));
      headers["RateLimit-Reset"] = String(resetSec);
      if (!result.value.allowed) throw new RateLimitedError("rate_limit", resetSec, headers);
    }
    const slotKey = `tenant:${ctx.tenantId}`;
    const max = quota.maxConcurrency;
    // The slot is released in the store that granted it, even if Redis comes or goes meanwhile.
    let slotStore: CounterStore | undefined;
    if (max) {
      const acquired = await this.withFallback((store) => store.acquireSlot(slotKey, max));
      if (!acquired.value) throw new RateLimitedError("concurrency_limit", 1, headers);
      slotStore = acquired.store;
    }
    let released = false;
    return {
      headers,
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
