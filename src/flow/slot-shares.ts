import type { Flow } from "./fair-queue.js";

/**
 * Who may take a free slot of a lane whose calls cannot be interrupted (a provider call, once
 * started, runs to its end). Fair ordering of the waiting calls is not enough there: a tenant
 * arriving at a lane another tenant has filled still waits for one of those calls to end.
 *
 * The rule: the tenants present (a call in the lane, or one entered within `windowMs`) share the
 * slots by weight. A tenant below its share may always take a free slot. A tenant at or above its
 * share may borrow more only while that leaves a slot free for each other present tenant below its
 * share (at most `keepFree` slots in all) — so a tenant within its share never queues behind one
 * beyond it. Alone, a tenant gets every slot; the slots kept free are the price of the others'
 * latency, and are given back when they have been gone for `windowMs`.
 */
export class SlotShares {
  private readonly held = new Map<string, number>();
  private readonly present = new Map<string, { seenAt: number; weight: number }>();

  constructor(
    private readonly slots: number,
    private readonly options: { keepFree: number; windowMs: number },
  ) {}

  get windowMs(): number {
    return this.options.windowMs;
  }

  /** A call of `flow` arrived at the lane. */
  seen(flow: Flow): void {
    this.present.set(flow.id, { seenAt: Date.now(), weight: Math.max(1, flow.weight ?? 1) });
  }

  took(flowId: string): void {
    this.held.set(flowId, (this.held.get(flowId) ?? 0) + 1);
  }

  gaveBack(flowId: string): void {
    const left = (this.held.get(flowId) ?? 1) - 1;
    if (left > 0) this.held.set(flowId, left);
    else this.held.delete(flowId);
  }

  /** Whether `flowId` may take one of the free slots now, with `inUse` slots taken. */
  mayTake(flowId: string, inUse: number): boolean {
    if (this.options.keepFree === 0) return true;
    const present = this.presentFlows();
    if (present.size <= 1) return true;
    let totalWeight = 0;
    for (const weight of present.values()) totalWeight += weight;
    const share = (id: string) => (this.slots * (present.get(id) ?? 1)) / totalWeight;
    const heldBy = (id: string) => this.held.get(id) ?? 0;
    if (heldBy(flowId) < share(flowId)) return true;
    let needed = 0;
    for (const id of present.keys()) if (id !== flowId && heldBy(id) < share(id)) needed++;
    return this.slots - inUse - 1 >= Math.min(needed, this.options.keepFree);
  }

  /** Present flows and their weights; forgets flows gone for the window. */
  private presentFlows(): Map<string, number> {
    const since = Date.now() - this.options.windowMs;
    const flows = new Map<string, number>();
    for (const [id, { seenAt, weight }] of this.present) {
      if (seenAt <= since && !this.held.has(id)) this.present.delete(id);
      else flows.set(id, weight);
    }
    return flows;
  }
}
