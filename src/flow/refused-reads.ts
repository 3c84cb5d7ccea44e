/** A connection that can stop and restart reading: a Node socket. */
export interface PausableConnection {
  pause(): unknown;
  resume(): unknown;
  readonly destroyed: boolean;
}

export interface RefusedReadsOptions {
  /** Whether admitted work is in service, waiting, or was in the last moment: only then are refused connections held back. */
  busy: () => boolean;
  /** Connections read again per turn of the event loop while busy, so that no turn carries a crowd of refusals. */
  perTurn: number;
  /** While busy, refusals may fill the event loop up to this utilization (0–1), no further. */
  targetUtilization: number;
  /** How often the rate of reads is adjusted to the loop's utilization. */
  intervalMs: number;
  /** The loop's utilization (0–1) since the previous call; Node's by default (tests give their own). */
  loopUtilization?: () => number;
}

/**
 * The event loop's utilization since the previous call (Node's global `performance`; made on the
 * first hold, so that a runtime without it — a Worker, where nothing is ever held — never asks).
 */
function nodeLoopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, last);
    last = now;
    return utilization;
  };
}

/**
 * The event loop is the one queue no scheduler sees: ready sockets are read in the order the
 * kernel reports them, so a tenant's flood of refused requests stands between another tenant's
 * search and each of its database replies, and its answers take the CPU that the database and the
 * model threads need. A connection whose request was just refused is the likeliest to send another
 * that will be refused: here its next request waits unread (TCP holds the client back), held in a
 * queue of the flow it was refused for (its tenant, or its address when no key was valid), and the
 * flows' queues are read again in turn — so a tenant refused once now and then is not held behind
 * another's thousand held connections. The refusal itself is never delayed, only the next request.
 *
 * While admitted work is about, held connections are read again at a rate adjusted every
 * `intervalMs` to the loop's utilization (additive increase, multiplicative decrease, as TCP does
 * for a congested link): refusals take the loop's idle time up to `targetUtilization`, and no turn
 * of the loop reads more than `perTurn` of them. With nothing admitted about, every held connection
 * is read at once: a flood alone is refused as fast as the instance can.
 */
export class RefusedReads {
  /** Held connections by flow, in the order the flows are served (a served flow goes to the back). */
  private readonly held = new Map<string, PausableConnection[]>();
  private heldCount = 0;
  private turnScheduled = false;
  private ticker: NodeJS.Timeout | undefined;
  /** Reads allowed per interval while busy, and what is left of this interval's. */
  private rate: number;
  private allowance: number;
  private loopUtilization: (() => number) | undefined;

  constructor(private readonly options: RefusedReadsOptions) {
    this.rate = options.perTurn;
    this.allowance = this.rate;
    this.loopUtilization = options.loopUtilization;
  }

  /** Connections waiting to be read again. */
  get waiting(): number {
    return this.heldCount;
  }

  /** Holds the connection's next read; call once the answer refused to `flow` is handed to the connection. */
  hold(connection: PausableConnection, flow: string): void {
    if (connection.destroyed) return;
    connection.pause();
    const queue = this.held.get(flow);
    if (queue) queue.push(connection);
    else this.held.set(flow, [connection]);
    this.heldCount++;
    this.scheduleTurn();
    if (!this.ticker) {
      this.loopUtilization ??= nodeLoopUtilization();
      this.loopUtilization(); // the first interval starts now
      this.ticker = setInterval(() => this.adjust(), this.options.intervalMs);
      this.ticker.unref?.();
    }
  }

  private adjust(): void {
    const utilization = this.loopUtilization!();
    if (utilization > this.options.targetUtilization) this.rate = Math.max(1, Math.floor(this.rate / 2));
    else if (this.allowance <= 0) this.rate += this.options.perTurn; // grown only while it was the limit
    this.allowance = this.rate;
    if (this.waiting > 0) this.scheduleTurn();
    else {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }

  private scheduleTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(() => this.turn());
  }

  private turn(): void {
    this.turnScheduled = false;
    const busy = this.options.busy();
    let budget = busy ? Math.min(this.options.perTurn, this.allowance) : Infinity;
    while (budget > 0 && this.heldCount > 0) {
      const connection = this.nextInTurn();
      if (connection.destroyed) continue;
      connection.resume();
      budget--;
      if (busy) this.allowance--;
    }
    if (this.heldCount > 0 && (!busy || this.allowance > 0)) {
      this.scheduleTurn();
    } // else: the next interval's allowance schedules the turn
  }

  /** The first held connection of the flow whose turn it is; the flow goes to the back. */
  private nextInTurn(): PausableConnection {
    const [flow, queue] = this.held.entries().next().value as [string, PausableConnection[]];
    const connection = queue.shift()!;
    this.held.delete(flow);
    if (queue.length > 0) this.held.set(flow, queue);
    this.heldCount--;
    return connection;
  }
}
