import type { RateLimiterRes } from "rate-limiter-flexible";
import { OverloadedError, RateLimitedError, withoutStack, type RateLimitWindow } from "../core/errors.js";
import type { Logger } from "../observability/logger.js";
import { ReadPace } from "../flow/read-pace.js";
import type { TenantQuota } from "../tenancy/tenant-quota.js";
import type { TenantContext } from "../core/tenant-context.js";
import { FairSeats, NoSeatError, type Seat } from "../flow/fair-seats.js";
import type { QueueDiscipline } from "../flow/fair-queue.js";
import { MemoryCounterStore, type CounterStore } from "./counter-store.js";

export interface AdmissionTicket {
  /** The rate-limit window the request was counted in, for the response's `RateLimit-*` headers. */
  rateLimit: RateLimitWindow | undefined;
  /** The request's seat in the instance (serve it inside `holdingSeat`, so providers can step away). */
  seat: Seat;
  release(): Promise<void>;
}

export interface AdmissionOptions {
  /** Requests this instance has admitted at once (in service or waiting for a seat); beyond it, 503. */
  maxInFlight: number;
  /** Requests in service at once; beyond it, requests wait for a seat in per-tenant fair queues (default: no wait). */
  maxInService?: number;
  /** Requests of one tenant waiting for a seat; beyond it, 429 `fair_share` (default: `maxInFlight`). */
  maxWaitingPerTenant?: number;
  /** How long a request waits for a seat before 429 `fair_share` (default 30 s: a backstop). */
  maxSeatWaitMs?: number;
  /** Large request bodies read and handled at once (default 2); beyond it they wait, fairly, unread. */
  maxLargeBodies?: number;
  /** Of which one tenant's at once (default 1): see `takeBodyPlace`. */
  maxLargeBodiesPerTenant?: number;
  /** Bytes a second a large body is read at while other tenants are served (`largeBodyPace`); 0 or absent: full speed. */
  largeBodyPace?: number;
  /** `fifo` is the benchmarks' baseline: first come first served, as many seats as admitted requests. */
  discipline?: QueueDiscipline;
}

/** Estimated work of a request, in searches: the fair-queuing cost of its seat. */
export type RequestCost = number;

/** Tokens are counted in a one-minute window whose own cap is never reached; the plan's limit is compared on admission. */
const TOKEN_COUNTER_POINTS = Number.MAX_SAFE_INTEGER;

/**
 * Request admission: one tenant's burst must not become everyone's latency. In order:
 * 1. a global ceiling per instance sheds load early (503 `overloaded`) instead of queueing without bound;
 * 2. the tenant's tokens in the current minute (plan) — 429 `token_limit` once used up;
 * 3. the tenant's requests per minute (plan), and the key's own if it has one — 429 `rate_limit`;
 * 4. the tenant's requests in flight (plan) — 429 `concurrency_limit`;
 * 5. a seat in the instance (FairSeats): a few requests are served at once; the rest wait in
 *    per-tenant queues served by weight (the plan's) and estimated work, so a tenant within its
 *    share is served ahead of another's backlog; a tenant with too many waiting gets 429 `fair_share`.
 * Counters live in the CounterStore (memory, or Redis shared by all instances). If the shared
 * store fails, admission falls back to this instance's memory rather than refusing everyone.
 * Every refusal here is decided from memory (and Redis, when shared): no database work.
 */
export class AdmissionController {
  private inFlight = 0;
  private readonly local = new MemoryCounterStore();
  /** Windows this instance has seen refuse, until they reset: `refusalOnRecord` answers from them. */
  private readonly exhausted = new Map<string, { until: number; limit: number; reason: "rate_limit" | "token_limit" }>();
  readonly seats: FairSeats;
  /** Places for large bodies: see `takeBodyPlace`. */
  readonly largeBodies: FairSeats;

  constructor(
    private readonly store: CounterStore,
    private readonly options: AdmissionOptions,
    private readonly logger: Logger,
  ) {
    // FIFO (the benchmarks' baseline): as many places as admitted requests, none kept free.
    const fifo = options.discipline === "fifo";
    const gate = (places: number, keepFree: number, maxPerFlow?: number) =>
      new FairSeats({
        seats: fifo ? options.maxInFlight : places,
        maxQueuedPerFlow: fifo ? options.maxInFlight : (options.maxWaitingPerTenant ?? options.maxInFlight),
        maxQueued: options.maxInFlight,
        maxWaitMs: options.maxSeatWaitMs ?? 30_000,
        keepFree: fifo ? 0 : keepFree,
        windowMs: 1000,
        maxPerFlow: fifo ? undefined : maxPerFlow,
        discipline: options.discipline,
      });
    this.seats = gate(options.maxInService ?? options.maxInFlight, 2);
    this.largeBodies = gate(options.maxLargeBodies ?? 2, 1, options.maxLargeBodiesPerTenant ?? 1);
  }

  /**
   * A place to read and handle a large body, for an admitted request. A body of megabytes is
   * received, copied, parsed and written to the database on the instance's few cores; a tenant
   * sending many at once would take them all. A few are handled at once (2), one tenant's one at a
   * time (on two cores, a tenant's second body at once doubled what another tenant's search felt,
   * for little more throughput); the rest wait unread (their clients held back by TCP) in
   * per-tenant fair queues. A slow sender holds one place, never another tenant's. Refused like a
   * seat: 429 `fair_share`, or 503.
   */
  async takeBodyPlace(ctx: TenantContext, quota: TenantQuota): Promise<Seat> {
    return this.largeBodies.take({ id: ctx.tenantId, weight: quota.weight, priority: "interactive" }).catch(refuseSeat);
  }

  /**
   * How one large body of `tenantId` is paced once it has its place (flow/read-pace.ts): at
   * `largeBodyPace` bytes a second while another tenant has a request in service other than its own
   * large bodies (two large bodies never slow each other), at full speed otherwise. Undefined when
   * large bodies are not paced.
   */
  largeBodyPace(tenantId: string): ((bytes: number) => number) | undefined {
    const rate = this.options.largeBodyPace;
    if (!rate) return undefined;
    const pace = new ReadPace(rate);
    return (bytes) => pace.read(bytes, this.seats.heldByOthers(tenantId) > this.largeBodies.heldByOthers(tenantId));
  }

  /** Requests admitted and not yet released (in service or waiting for a seat). */
  get admitted(): number {
    return this.inFlight;
  }

  async admit(ctx: TenantContext, quota: TenantQuota, cost: RequestCost = 1): Promise<AdmissionTicket> {
    if (this.inFlight >= this.options.maxInFlight) throw new OverloadedError(1);
    // Counted before the first await, so requests arriving together cannot all pass the ceiling.
    this.inFlight++;
    let tenantTicket: Omit<AdmissionTicket, "seat"> | undefined;
    try {
      tenantTicket = await this.admitTenant(ctx, quota);
      const seat = await this.seats.take({ id: ctx.tenantId, weight: quota.weight, priority: "interactive" }, cost).catch(refuseSeat);
      const { rateLimit, release } = tenantTicket;
      return {
        rateLimit,
        seat,
        release: async () => {
          seat.release();
          await release();
        },
      };
    } catch (error) {
      if (tenantTicket) await tenantTicket.release();
      else this.inFlight--;
      throw error;
    }
  }

  /** Whether any window is on record: when none is, a request need not even be looked up. */
  hasRefusalsOnRecord(): boolean {
    return this.exhausted.size > 0;
  }

  /**
   * The refusal a request would get because a window of its tenant or key is used up until it
   * resets — known without touching a counter, since this instance saw the window refuse. The
   * entry holds the limit it was counted against: a plan change (a new limit) ends it at once.
   * Undefined when nothing is on record: the request goes through `admit` as usual.
   */
  refusalOnRecord(tenantId: string, keyId: string, quota: TenantQuota): RateLimitedError | undefined {
    if (this.exhausted.size === 0) return undefined; // every admitted request asks: answer it for free
    const now = Date.now();
    const windows: [string, number | null][] = [
      [`tpm:${tenantId}`, quota.tokensPerMinute],
      [`rpm:${tenantId}`, quota.requestsPerMinute],
      [`rpm-key:${keyId}`, quota.keyRequestsPerMinute],
    ];
    for (const [key, limit] of windows) {
      const entry = this.exhausted.get(key);
      if (!entry) continue;
      if (entry.until <= now || entry.limit !== limit) {
        this.exhausted.delete(key);
        continue;
      }
      const resetSeconds = Math.max(1, Math.ceil((entry.until - now) / 1000));
      return withoutStack(() => new RateLimitedError(entry.reason, resetSeconds, { limit: entry.limit, remaining: 0, resetSeconds }));
    }
    return undefined;
  }

  private noteExhausted(key: string, limit: number, reason: "rate_limit" | "token_limit", msBeforeNext: number): void {
    // Bounded by the keys refused within a minute; expired entries are dropped as they are met.
    if (this.exhausted.size >= 100_000) this.exhausted.clear();
    this.exhausted.set(key, { until: Date.now() + msBeforeNext, limit, reason });
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

  private async admitTenant(ctx: TenantContext, quota: TenantQuota): Promise<Omit<AdmissionTicket, "seat">> {
    if (quota.tokensPerMinute) {
      const limit = quota.tokensPerMinute;
      const { value: res, store } = await this.withFallback((s) => s.rateLimiter("tokens", TOKEN_COUNTER_POINTS, 60).get(`tpm:${ctx.tenantId}`));
      if (res && res.consumedPoints >= limit) {
        const resetSec = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
        if (store === this.store) this.noteExhausted(`tpm:${ctx.tenantId}`, limit, "token_limit", res.msBeforeNext);
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
      if (!result.value.allowed) {
        // Only what the shared store said: this instance's fallback counters are not the tenant's window.
        if (result.store === this.store) this.noteExhausted(key, limit, "rate_limit", result.value.res.msBeforeNext);
        throw new RateLimitedError("rate_limit", resetSec, tightest);
      }
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

/** A request the instance has no seat for: its tenant's queue is full or it waited too long (429), or every queue is (503). */
function refuseSeat(error: unknown): never {
  if (!(error instanceof NoSeatError)) throw error;
  throw error.why === "queue_full" ? new OverloadedError(1) : new RateLimitedError("fair_share", 1);
}

async function consume(store: CounterStore, key: string, points: number): Promise<{ allowed: boolean; res: RateLimiterRes }> {
  try {
    return { allowed: true, res: await store.rateLimiter("rate", points, 60).consume(key, 1) };
  } catch (rejection) {
    if (rejection instanceof Error) throw rejection;
    return { allowed: false, res: rejection as RateLimiterRes };
  }
}
