import type { Flow } from "./fair-queue.js";

/**
 * Who may take a free slot of a lane whose calls cannot be interrupted (a provider call, once
 * started, runs to its end; a request in service, once admitted). Fair ordering of the waiting
 * calls is not enough there: a tenant arriving at a lane another tenant has filled still waits for
 * one of those calls to end.
 *
 * The rule: the tenants present (a call in the lane, or one entered within `windowMs`) share the
 * slots by weight, each allotted whole slots — its weighted share rounded by largest remainder, so
 * the allotments add up to the slots, and at least one each. A tenant below its allotment may
 * always take a free slot. A tenant at or above it may borrow more only while that leaves free the
 * slots the others are still allotted (at most `keepFree` in all) — so a tenant within its share
 * never queues behind one beyond it, even with a few calls of its own in the lane (a search while
 * its upload runs). Alone, a tenant gets every slot; the slots kept free are the price of the
 * others' latency, and are given back when they have been gone for `windowMs`.
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

  /** Slots `flowId` holds now. */
  heldBy(flowId: string): number {
    return this.held.get(flowId) ?? 0;
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
    const allotted = allot(this.slots, present);
    const headroom = (id: string) => Math.max(0, (allotted.get(id) ?? 1) - (this.held.get(id) ?? 0));
    if (headroom(flowId) > 0) return true;
    let owedToOthers = 0;
    for (const id of present.keys()) if (id !== flowId) owedToOthers += headroom(id);
    return this.slots - inUse - 1 >= Math.min(owedToOthers, this.options.keepFree);
  }

  /** Whether a flow other than `flowId` is present (holds a slot, or arrived within the window). */
  othersPresent(flowId: string): boolean {
    for (const id of this.presentFlows().keys()) if (id !== flowId) return true;
    return false;
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

/**
 * Whole slots per flow: `slots` split by weight with at least one slot each (while there are as
 * many slots as flows), rounded by largest remainder (ties to the lighter flow, which a fraction
 * helps most) — so 8 slots between weights 16 and 4 are 6 and 2, not 7 and 2 (more than there
 * are) nor 6 and 1 (a slot unallotted); 4 slots between weights 16, 1, 1 and 1 are one each.
 */
function allot(slots: number, weights: Map<string, number>): Map<string, number> {
  let total = 0;
  for (const weight of weights.values()) total += weight;
  const exact = new Map<string, number>();
  const allotted = new Map<string, number>();
  let sum = 0;
  for (const [id, weight] of weights) {
    exact.set(id, (slots * weight) / total);
    const whole = Math.max(1, Math.floor(exact.get(id)!));
    allotted.set(id, whole);
    sum += whole;
  }
  // The slots given to small flows come from those furthest above their exact share.
  while (sum > slots) {
    let from: string | undefined;
    for (const [id, whole] of allotted) {
      if (whole > 1 && (from === undefined || whole - exact.get(id)! > allotted.get(from)! - exact.get(from)!)) from = id;
    }
    if (from === undefined) break; // more flows than slots: one each, over-booked
    allotted.set(from, allotted.get(from)! - 1);
    sum--;
  }
  const byRemainder = [...allotted.keys()].sort(
    (a, b) => exact.get(b)! - allotted.get(b)! - (exact.get(a)! - allotted.get(a)!) || weights.get(a)! - weights.get(b)!,
  );
  for (const id of byRemainder) {
    if (sum >= slots) break;
    allotted.set(id, allotted.get(id)! + 1);
    sum++;
  }
  return allotted;
}
