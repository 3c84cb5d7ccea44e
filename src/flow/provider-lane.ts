import { ProviderUnavailableError } from "../core/errors.js";
import { FairQueue, type Flow, type QueueDiscipline } from "./fair-queue.js";
import { awayFromSeat } from "./seat-scope.js";
import { SlotShares } from "./slot-shares.js";

export interface ProviderLaneOptions {
  /** Calls in flight to this provider at once (match its real quota). */
  maxConcurrent: number;
  /** Consecutive failures that open the breaker. */
  failureThreshold: number;
  /** How long an open breaker fails fast before letting one probe through. */
  cooldownMs: number;
  /** How long a call may wait for a free place in the lane before it is refused. */
  queueTimeoutMs: number;
  /** How waiting calls are ordered: fair across tenants (default), or FIFO (benchmark baseline). */
  discipline?: QueueDiscipline;
  /**
   * Calls this instance may start per minute (the provider's request quota, divided by the number
   * of instances). Starts are paced evenly, with a burst of a tenth of a minute's worth.
   */
  maxPerMinute?: number | undefined;
  /**
   * Slots kept free for tenants below their share of the lane while another tenant borrows beyond
   * its own (see SlotShares; default 1, 0 turns it off). A call cannot be interrupted, so without
   * a free slot a tenant within its share would wait for another tenant's call to end. Alone in
   * the lane, a tenant gets every slot. Not applied to the FIFO baseline.
   */
  reservedSlots?: number | undefined;
  /** How long a tenant counts as present after its last call arrived at the lane (default 10 s). */
  reservationWindowMs?: number | undefined;
}

/** A call without a tenant (a start-up probe) queues as a flow of its own. */
const UNATTRIBUTED: Flow = { id: "", priority: "bulk" };

type BreakerState = "closed" | "open" | "half_open";

export interface LanePass {
  succeeded(): void;
  failed(): void;
  abandoned(): void;
}

/**
 * A bulkhead per upstream provider: its own concurrency lane (callers wait for a free place,
 * bounded in time, in a queue that is fair across tenants — one tenant's thousand calls do not
 * stand in front of another's one) and a circuit breaker. After `failureThreshold` consecutive failures the
 * breaker opens and calls fail fast with a clear 503 instead of piling up timeouts; after the
 * cooldown one probe is let through, and its success closes the breaker again. One failing
 * provider therefore never holds the capacity of the others.
 */
export class ProviderLane {
  private active = 0;
  /** Who may take a free slot: shares of the tenants present (fair ordering alone cannot preempt). */
  private readonly shares: SlotShares;
  private readonly waiting: FairQueue<{ flowId: string; grant: () => void }>;
  /** Pacing (GCRA): the earliest time the next call may start, and a timer waiting for it. */
  private nextStartAt = 0;
  private pacingTimer: NodeJS.Timeout | undefined;
  private reservationTimer: NodeJS.Timeout | undefined;
  private state: BreakerState = "closed";
  private failures = 0;
  private openedAt = 0;
  private probing = false;

  constructor(
    readonly name: string,
    private readonly options: ProviderLaneOptions,
  ) {
    this.waiting = new FairQueue(options.discipline ?? "fair");
    this.shares = new SlotShares(options.maxConcurrent, {
      keepFree: options.discipline === "fifo" ? 0 : (options.reservedSlots ?? 1),
      windowMs: options.reservationWindowMs ?? 10_000,
    });
  }

  /** Calls in the lane now, and calls waiting for a place (read by the metrics at scrape time). */
  get inFlight(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.size;
  }

  get breakerState(): BreakerState {
    if (this.state === "open" && Date.now() - this.openedAt >= this.options.cooldownMs) return "half_open";
    return this.state;
  }

  /**
   * Enters the lane (waiting for a place, or refused while the breaker is open). The caller ends
   * the pass exactly once: `succeeded()`, `failed()` (counts against the breaker), or `abandoned()`
   * (neither, e.g. the client went away). A stream holds its pass until it ends.
   */
  async enter(flow: Flow = UNATTRIBUTED): Promise<LanePass> {
    const probe = this.admitThroughBreaker();
    try {
      await this.acquire(flow);
    } catch (error) {
      if (probe) this.probing = false;
      throw error;
    }
    let done = false;
    const end = (outcome: "success" | "failure" | "abandoned") => {
      if (done) return;
      done = true;
      if (outcome === "success") this.onSuccess();
      else if (outcome === "failure") this.onFailure();
      else if (probe) this.probing = false;
      this.shares.gaveBack(flow.id);
      this.release();
    };
    return { succeeded: () => end("success"), failed: () => end("failure"), abandoned: () => end("abandoned") };
  }

  /**
   * Runs one provider call in the lane; `isFailure` decides what counts against the breaker. The
   * request's instance seat is given up meanwhile: waiting on a provider is no work of this instance.
   */
  run<T>(call: () => Promise<T>, isFailure: (error: unknown) => boolean, flow?: Flow): Promise<T> {
    return awayFromSeat(() => this.runInLane(call, isFailure, flow));
  }

  private async runInLane<T>(call: () => Promise<T>, isFailure: (error: unknown) => boolean, flow?: Flow): Promise<T> {
    const pass = await this.enter(flow);
    try {
      const result = await call();
      pass.succeeded();
      return result;
    } catch (error) {
      if (isFailure(error)) pass.failed();
      else pass.abandoned();
      throw error;
    }
  }

  /** Throws while open; in half-open state lets exactly one probe through. Returns true for a probe. */
  private admitThroughBreaker(): boolean {
    const state = this.breakerState;
    if (state === "closed") return false;
    if (state === "half_open" && !this.probing) {
      this.probing = true;
      return true;
    }
    const retryAfterMs = Math.max(0, this.options.cooldownMs - (Date.now() - this.openedAt));
    throw new ProviderUnavailableError(this.name, "circuit_open", Math.max(1, Math.ceil(retryAfterMs / 1000)));
  }

  private onSuccess(): void {
    this.failures = 0;
    this.state = "closed";
    this.probing = false;
  }

  private onFailure(): void {
    this.failures++;
    if (this.probing || this.failures >= this.options.failureThreshold) {
      this.state = "open";
      this.openedAt = Date.now();
    }
    this.probing = false;
  }

  private acquire(flow: Flow): Promise<void> {
    this.shares.seen(flow);
    if (this.waiting.size === 0 && this.active < this.options.maxConcurrent && this.mayTakeSlot(flow.id) && this.takeStart()) {
      this.occupy(flow.id);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const entry = {
        flowId: flow.id,
        grant: () => {
          clearTimeout(timer);
          this.occupy(flow.id);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiting.remove(entry);
        reject(new ProviderUnavailableError(this.name, "lane_saturated", 1));
      }, this.options.queueTimeoutMs);
      this.waiting.push(flow, entry);
      this.pump();
    });
  }

  /** Counted at the moment a slot is granted, so the next decision (same tick) already sees it. */
  private occupy(flowId: string): void {
    this.active++;
    this.shares.took(flowId);
  }

  private mayTakeSlot(flowId: string): boolean {
    return this.shares.mayTake(flowId, this.active);
  }

  private release(): void {
    this.active--;
    this.pump();
  }

  /** Starts waiting calls, in fair order, while there is a free place and the pace allows. */
  private pump(): void {
    while (this.waiting.size > 0 && this.active < this.options.maxConcurrent) {
      const eligible = (flowId: string) => this.mayTakeSlot(flowId);
      if (!this.waiting.hasEligible(eligible)) {
        // Only tenants at their share are waiting: the reserved slot stays free. Look again when
        // the reservation lapses, in case the other tenants have gone by then.
        this.reservationTimer ??= setTimeout(() => {
          this.reservationTimer = undefined;
          this.pump();
        }, this.shares.windowMs + 10); // a timer may fire a millisecond early by Date.now()
        this.reservationTimer.unref();
        return;
      }
      if (!this.takeStart()) {
        this.pacingTimer ??= setTimeout(() => {
          this.pacingTimer = undefined;
          this.pump();
        }, Math.max(1, this.nextStartAt - this.burstMs() - Date.now()));
        return;
      }
      this.waiting.shift(eligible)!.grant();
    }
  }

  /** Takes one start from the per-minute pace (always granted without a limit). */
  private takeStart(): boolean {
    const perMinute = this.options.maxPerMinute;
    if (!perMinute) return true;
    const now = Date.now();
    if (this.nextStartAt - this.burstMs() > now) return false;
    this.nextStartAt = Math.max(this.nextStartAt, now) + 60_000 / perMinute;
    return true;
  }

  private burstMs(): number {
    // A tenth of a minute's starts may come at once; beyond that they are spaced evenly.
    const perMinute = this.options.maxPerMinute ?? 0;
    return perMinute ? Math.max(0, Math.floor(perMinute / 10) - 1) * (60_000 / perMinute) : 0;
  }
}

/** Server errors and lost connections count against a breaker; 4xx, 429 and the caller's own aborts do not. */
export function isProviderFault(error: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return false;
  const status = (error as { status?: number }).status;
  return status === undefined || status >= 500;
}
