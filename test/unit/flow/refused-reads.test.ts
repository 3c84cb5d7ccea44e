import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RefusedReads, type RefusedReadsOptions } from "../../../src/flow/refused-reads.js";

/**
 * Refused connections read again at low priority (issue 16: a refused flood must not become another
 * tenant's latency). Driven with fake timers and a stated loop utilization, so every rule shows as
 * an exact count of connections read again: all at once when nothing admitted is about, a few per
 * turn and a rate per interval while busy, the rate halved when the loop is over its target and
 * grown while it is the limit, flows served in turn, closed connections skipped.
 */
class FakeConnection {
  paused = false;
  resumes = 0;
  destroyed = false;
  constructor(readonly name: string, private readonly log: string[]) {}
  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
    this.resumes++;
    this.log.push(this.name);
  }
}

let resumed: string[];
let busy: boolean;
let utilization: number;

function reads(overrides: Partial<RefusedReadsOptions> = {}): RefusedReads {
  return new RefusedReads({ busy: () => busy, perTurn: 2, targetUtilization: 0.5, intervalMs: 10, loopUtilization: () => utilization, ...overrides });
}

function connections(prefix: string, n: number): FakeConnection[] {
  return Array.from({ length: n }, (_, i) => new FakeConnection(`${prefix}${i}`, resumed));
}

/**
 * The fake clock gives each turn of the loop (setImmediate) a millisecond. Tests start half an
 * interval in (`start`), so that each `interval` covers one tick of the rate and the turns it allows.
 */
async function start(): Promise<void> {
  await vi.advanceTimersByTimeAsync(5);
}
async function interval(): Promise<void> {
  await vi.advanceTimersByTimeAsync(10);
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setImmediate", "setInterval", "clearInterval", "setTimeout", "clearTimeout", "Date"] });
  resumed = [];
  busy = false;
  utilization = 0;
});
afterEach(() => {
  vi.useRealTimers();
});

describe("RefusedReads", () => {
  it("pauses a connection when it is held, and reads every held one again at once when nothing admitted is about", async () => {
    const r = reads();
    const held = connections("a", 50);
    for (const c of held) r.hold(c, "tenant-a");
    expect(held.every((c) => c.paused)).toBe(true);
    expect(r.waiting).toBe(50);
    vi.runAllTicks();
    await vi.advanceTimersByTimeAsync(0);
    expect(held.every((c) => !c.paused && c.resumes === 1)).toBe(true);
    expect(r.waiting).toBe(0);
  });

  it("while busy, reads at most perTurn per turn and the interval's allowance, then waits for the next interval", async () => {
    busy = true;
    const r = reads({ perTurn: 2 });
    for (const c of connections("a", 20)) r.hold(c, "tenant-a");
    await vi.advanceTimersByTimeAsync(9); // the turns before the first interval ends
    // The first allowance is one turn's worth: two read, the rest wait for the interval.
    expect(resumed).toHaveLength(2);
    expect(r.waiting).toBe(18);
  });

  it("grows the rate while the loop is under its target and the allowance was the limit", async () => {
    busy = true;
    utilization = 0.2;
    const r = reads({ perTurn: 2 });
    for (const c of connections("a", 100)) r.hold(c, "tenant-a");
    await start();
    const perInterval: number[] = [resumed.length];
    for (let i = 0; i < 4; i++) {
      const before = resumed.length;
      await interval();
      perInterval.push(resumed.length - before);
    }
    // 2, then 4, 6, 8, 10: additive increase of perTurn per interval.
    expect(perInterval).toEqual([2, 4, 6, 8, 10]);
  });

  it("halves the rate when the loop is over its target, down to one read per interval", async () => {
    busy = true;
    utilization = 0.2;
    const r = reads({ perTurn: 2 });
    for (const c of connections("a", 200)) r.hold(c, "tenant-a");
    await start();
    for (let i = 0; i < 4; i++) await interval(); // rate 10 by now
    utilization = 0.9;
    const perInterval: number[] = [];
    for (let i = 0; i < 5; i++) {
      const before = resumed.length;
      await interval();
      perInterval.push(resumed.length - before);
    }
    expect(perInterval).toEqual([5, 2, 1, 1, 1]);
  });

  it("does not grow the rate while it was not the limit (a quiet spell does not store up a burst)", async () => {
    busy = true;
    utilization = 0.1;
    const r = reads({ perTurn: 2 });
    const [first] = connections("a", 1);
    r.hold(first!, "tenant-a");
    await vi.advanceTimersByTimeAsync(200); // twenty intervals with one connection: the rate stays 2
    for (const c of connections("b", 20)) r.hold(c, "tenant-b");
    const before = resumed.length;
    await vi.advanceTimersByTimeAsync(9); // until the next interval
    expect(resumed.length - before).toBe(2);
  });

  it("serves the flows in turn: a tenant refused once is not held behind another's many connections", async () => {
    busy = true;
    utilization = 0.9; // the rate stays at its floor: one read per interval after the first allowance
    const r = reads({ perTurn: 1 });
    for (const c of connections("flood", 30)) r.hold(c, "aggressor");
    const [victim] = connections("victim", 1);
    r.hold(victim!, "victim");
    await start();
    await interval();
    expect(resumed).toEqual(["flood0", "victim0"]);
  });

  it("skips a connection closed while held, without spending a read on it", async () => {
    busy = true;
    const r = reads({ perTurn: 2 });
    const held = connections("a", 4);
    for (const c of held) r.hold(c, "tenant-a");
    held[0]!.destroyed = true;
    await vi.advanceTimersByTimeAsync(0);
    expect(resumed).toEqual(["a1", "a2"]);
  });

  it("ignores a connection already closed when it is refused", () => {
    const r = reads();
    const [c] = connections("a", 1);
    c!.destroyed = true;
    r.hold(c!, "tenant-a");
    expect(c!.paused).toBe(false);
    expect(r.waiting).toBe(0);
  });
});
