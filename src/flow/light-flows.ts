/**
 * Which flows (tenants) are light at a resource right now: a tenant asking for a little (a query,
 * a small upload), as opposed to one with a backlog. Capacity kept for light work — a reserved
 * model thread — serves light flows only, so that a tenant with a backlog can never occupy it.
 *
 * A flow is heavy while it has more than `maxOutstanding` items outstanding (waiting or running),
 * and stays heavy for `holdMs` after it last had, so that a backlog which drains for an instant
 * between two documents does not slip onto the reserved capacity in that instant (the same gap the
 * job scheduler's reserved worker guards against with its bound on queued jobs).
 */
export class LightFlows {
  private readonly outstanding = new Map<string, number>();
  private readonly heavyUntil = new Map<string, number>();

  constructor(
    private readonly options: { maxOutstanding: number; holdMs: number },
    private readonly now: () => number = Date.now,
  ) {}

  /** `count` items of `flowId` arrived. */
  added(flowId: string, count: number): void {
    const outstanding = (this.outstanding.get(flowId) ?? 0) + count;
    this.outstanding.set(flowId, outstanding);
    if (outstanding > this.options.maxOutstanding) this.heavyUntil.set(flowId, this.now() + this.options.holdMs);
  }

  /** One item of `flowId` finished (or was given up). */
  finished(flowId: string): void {
    const outstanding = (this.outstanding.get(flowId) ?? 1) - 1;
    if (outstanding > 0) this.outstanding.set(flowId, outstanding);
    else this.outstanding.delete(flowId);
    // The hold counts from the moment the backlog fell back within bounds.
    if (outstanding + 1 > this.options.maxOutstanding) this.heavyUntil.set(flowId, this.now() + this.options.holdMs);
  }

  isLight(flowId: string): boolean {
    if ((this.outstanding.get(flowId) ?? 0) > this.options.maxOutstanding) return false;
    const until = this.heavyUntil.get(flowId);
    if (until === undefined) return true;
    if (until > this.now()) return false;
    this.heavyUntil.delete(flowId);
    return true;
  }
}
