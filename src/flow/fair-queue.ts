/** Whose work an item is, how much of a contended resource that owner deserves, and how urgent. */
export interface Flow {
  /** Usually the tenant id: each flow gets its own share. */
  id: string;
  /** Relative share (the plan's scheduling weight); at least 1, so no share drops to zero. */
  weight?: number;
  /** Interactive work (a person is waiting) is served before bulk work. */
  priority?: "interactive" | "bulk";
}

/** `fair` is Fence's discipline; `fifo` exists only as the noisy-neighbour benchmark's baseline. */
export type QueueDiscipline = "fair" | "fifo";

interface Backlog<T> {
  items: T[];
  /** Each item's estimated work, in the same order (1 unless the caller says). */
  costs: number[];
  /** Virtual start tag of the flow's next item. */
  start: number;
  weight: number;
}

/**
 * Start-time fair queuing across flows, in memory: each flow keeps its own FIFO; the next item
 * comes from the backlogged flow with the smallest virtual start tag, and serving a flow advances
 * its tag by cost/weight (cost: the item's estimated work, 1 by default). A flow that becomes backlogged starts at the current virtual time, so a
 * tenant with a thousand queued calls and one with a single call alternate (weighted), and idling
 * earns no burst credit. Interactive items are served before bulk ones.
 *
 * The durable job scheduler (jobs/fair-scheduler.ts) applies the same rule in SQL.
 */
export class FairQueue<T> {
  private readonly levels = [new Map<string, Backlog<T>>(), new Map<string, Backlog<T>>()];
  private readonly virtualTime = [0, 0];
  private count = 0;

  constructor(private readonly discipline: QueueDiscipline = "fair") {}

  get size(): number {
    return this.count;
  }

  push(flow: Flow, item: T, cost = 1): void {
    const level = this.discipline === "fifo" || flow.priority !== "interactive" ? 1 : 0;
    const id = this.discipline === "fifo" ? "" : flow.id;
    const flows = this.levels[level]!;
    let backlog = flows.get(id);
    if (!backlog) {
      backlog = { items: [], costs: [], start: this.virtualTime[level]!, weight: Math.max(1, flow.weight ?? 1) };
      flows.set(id, backlog);
    }
    backlog.items.push(item);
    backlog.costs.push(cost);
    this.count++;
  }

  /** The next item in fair order, from flows that `eligible` admits (all, without it). */
  shift(eligible?: (flowId: string) => boolean): T | undefined {
    for (let level = 0; level < this.levels.length; level++) {
      const flows = this.levels[level]!;
      let nextId: string | undefined;
      let next: Backlog<T> | undefined;
      for (const [id, backlog] of flows) {
        if (eligible && !eligible(id)) continue;
        if (!next || backlog.start < next.start) {
          nextId = id;
          next = backlog;
        }
      }
      if (!next) continue;
      const item = next.items.shift()!;
      const cost = next.costs.shift()!;
      this.virtualTime[level] = next.start;
      next.start += cost / next.weight;
      if (next.items.length === 0) flows.delete(nextId!);
      this.count--;
      return item;
    }
    return undefined;
  }

  /** Whether some flow that `eligible` admits has an item waiting. */
  hasEligible(eligible: (flowId: string) => boolean): boolean {
    return this.levels.some((flows) => [...flows.keys()].some(eligible));
  }

  /** Takes a waiting item out (its caller gave up). */
  remove(item: T): boolean {
    for (const flows of this.levels) {
      for (const [id, backlog] of flows) {
        const index = backlog.items.indexOf(item);
        if (index < 0) continue;
        backlog.items.splice(index, 1);
        backlog.costs.splice(index, 1);
        if (backlog.items.length === 0) flows.delete(id);
        this.count--;
        return true;
      }
    }
    return false;
  }
}
