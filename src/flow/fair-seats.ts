import { FairQueue, type Flow, type QueueDiscipline } from "./fair-queue.js";
import { SlotShares } from "./slot-shares.js";

/** Why a request got no seat: its tenant has too many waiting, or the whole instance has. */
export type SeatRefusal = "flow_queue_full" | "queue_full" | "timed_out";

export class NoSeatError extends Error {
  constructor(readonly why: SeatRefusal) {
    super(`no seat: ${why}`);
  }
}

export interface FairSeatsOptions {
  /** Requests in service at once, over all flows. */
  seats: number;
  /** Requests of one flow waiting for a seat while other flows are present; one more is refused (`flow_queue_full`). */
  maxQueuedPerFlow: number;
  /** Requests waiting over all flows; one more is refused (`queue_full`). */
  maxQueued: number;
  /** A request that waited this long without a seat is refused (`timed_out`); Infinity waits on. */
  maxWaitMs: number;
  /** Seats kept free for present flows below their share (see SlotShares); 0 turns shares off. */
  keepFree: number;
  /** How long a flow counts as present after its last request. */
  windowMs: number;
  /**
   * Seats one flow may hold at once, even when more are free (default: all). Where a seat stands
   * for a core's worth of work (a large body), a flow alone must not take every core at once.
   */
  maxPerFlow?: number;
  discipline?: QueueDiscipline;
}

/** A seat taken: give it back once, and step away from it while waiting on something outside. */
export interface Seat {
  release(): void;
  /**
   * Runs `wait` without holding the seat (a call to an outside provider: the instance does no work
   * for it meanwhile), then takes a seat again at once, without queueing: the request was admitted.
   */
  away<T>(wait: () => Promise<T>): Promise<T>;
}

interface Waiter {
  flow: Flow;
  grant: (seat: Seat) => void;
  refuse: (error: NoSeatError) => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * A fixed number of seats — requests in service — shared by flows (tenants), after Kubernetes'
 * API Priority and Fairness: beyond the seats, each flow waits in its own queue, served by weighted
 * fair queuing with each request's estimated work as its cost, and short per-flow queues refuse
 * early. SlotShares keeps a seat free for a present flow below its share, so a tenant within its
 * share never waits behind the backlog of one beyond it; a flow alone gets every seat.
 */
export class FairSeats {
  private inUse = 0;
  private readonly queue: FairQueue<Waiter>;
  private readonly shares: SlotShares;
  private readonly queuedByFlow = new Map<string, number>();
  private lastAskedAt = 0;

  constructor(private readonly options: FairSeatsOptions) {
    this.queue = new FairQueue(options.discipline ?? "fair");
    this.shares = new SlotShares(options.seats, { keepFree: options.keepFree, windowMs: options.windowMs });
  }

  get inService(): number {
    return this.inUse;
  }

  get waiting(): number {
    return this.queue.size;
  }

  /** Seats held by flows other than `flowId`. */
  heldByOthers(flowId: string): number {
    return this.inUse - this.shares.heldBy(flowId);
  }

  /** Whether a request holds a seat, waits for one, or asked for one in the last `ms`. */
  activeWithin(ms: number): boolean {
    return this.inUse > 0 || this.queue.size > 0 || Date.now() - this.lastAskedAt < ms;
  }

  /** A seat for one request of `flow`; `cost` is its estimated work (its fair-queuing cost). */
  take(flow: Flow, cost = 1): Promise<Seat> {
    this.lastAskedAt = Date.now();
    this.shares.seen(flow);
    if (this.queue.size === 0 && this.inUse < this.options.seats && this.mayTake(flow.id)) {
      return Promise.resolve(this.seatFor(flow.id));
    }
    const queued = this.queuedByFlow.get(flow.id) ?? 0;
    // The per-flow limit is what keeps one flow's backlog from becoming the others' wait; a flow
    // alone holds nobody up, and may queue up to the instance's limit.
    if (queued >= this.options.maxQueuedPerFlow && this.othersPresent(flow.id)) return Promise.reject(new NoSeatError("flow_queue_full"));
    if (this.queue.size >= this.options.maxQueued) return Promise.reject(new NoSeatError("queue_full"));
    return new Promise<Seat>((grant, refuse) => {
      const waiter: Waiter = { flow, grant, refuse, timer: undefined };
      if (Number.isFinite(this.options.maxWaitMs)) {
        waiter.timer = setTimeout(() => {
          if (!this.queue.remove(waiter)) return;
          this.dequeued(flow.id);
          refuse(new NoSeatError("timed_out"));
        }, this.options.maxWaitMs);
      }
      this.queue.push(flow, waiter, cost);
      this.queuedByFlow.set(flow.id, queued + 1);
      this.dispatch(); // a seat may be free, held back only by the order of the queue
    });
  }

  /** Whether `flowId` may take a free seat now: below its own cap, and not owed to others (SlotShares). */
  private mayTake(flowId: string): boolean {
    const cap = this.options.maxPerFlow ?? Infinity;
    return this.shares.heldBy(flowId) < cap && this.shares.mayTake(flowId, this.inUse);
  }

  private hold(flowId: string): void {
    this.inUse++;
    this.shares.took(flowId);
  }

  private seatFor(flowId: string): Seat {
    this.hold(flowId);
    let held = true;
    let released = false;
    const give = () => {
      if (!held) return;
      held = false;
      this.inUse--;
      this.shares.gaveBack(flowId);
      this.dispatch();
    };
    return {
      release: () => {
        released = true;
        give();
      },
      away: async (wait) => {
        if (!held) return wait();
        give();
        try {
          return await wait();
        } finally {
          if (!released) {
            held = true;
            this.hold(flowId);
          }
        }
      },
    };
  }

  private dispatch(): void {
    while (this.inUse < this.options.seats && this.queue.size > 0) {
      const waiter = this.queue.shift((flowId) => this.mayTake(flowId));
      if (!waiter) {
        // Free seats held back for flows that were present: once they are gone (the window), the
        // waiting flow gets them — but only a new arrival or a release would call dispatch again.
        // (A flow at its own cap gets one at a release of its own, which dispatches.)
        this.retryDispatchLater();
        return;
      }
      clearTimeout(waiter.timer);
      this.dequeued(waiter.flow.id);
      waiter.grant(this.seatFor(waiter.flow.id));
    }
  }

  private retryTimer: NodeJS.Timeout | undefined;

  private retryDispatchLater(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.dispatch();
    }, this.shares.windowMs + 1);
    this.retryTimer.unref?.();
  }

  /** Another flow holds a seat, waits for one, or arrived within the window. */
  private othersPresent(flowId: string): boolean {
    if (this.shares.othersPresent(flowId)) return true;
    for (const id of this.queuedByFlow.keys()) if (id !== flowId) return true;
    return false;
  }

  private dequeued(flowId: string): void {
    const left = (this.queuedByFlow.get(flowId) ?? 1) - 1;
    if (left > 0) this.queuedByFlow.set(flowId, left);
    else this.queuedByFlow.delete(flowId);
  }
}
