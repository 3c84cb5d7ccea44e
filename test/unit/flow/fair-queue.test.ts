import { describe, expect, it } from "vitest";
import { FairQueue, type Flow } from "../../../src/flow/fair-queue.js";

/**
 * The in-memory fair queue that orders waiting provider calls and embedding batches: start-time
 * fair queuing across flows (weighted), interactive before bulk, no burst credit for idling, and a
 * plain FIFO baseline. Items are objects tagged with their flow so each shift can be attributed.
 */
interface Item {
  flow: string;
  n: number;
  priority: "interactive" | "bulk";
}

function pushMany(queue: FairQueue<Item>, flow: Flow, count: number, from = 0): Item[] {
  const items: Item[] = [];
  for (let n = from; n < from + count; n++) {
    const item: Item = { flow: flow.id, n, priority: flow.priority ?? "bulk" };
    queue.push(flow, item);
    items.push(item);
  }
  return items;
}

function shiftMany(queue: FairQueue<Item>, count: number): Item[] {
  const out: Item[] = [];
  for (let i = 0; i < count; i++) {
    const item = queue.shift();
    if (!item) break;
    out.push(item);
  }
  return out;
}

/** The longest run of consecutive items from the same flow. */
function longestRun(items: Item[]): number {
  let longest = 0;
  let run = 0;
  for (let i = 0; i < items.length; i++) {
    run = i > 0 && items[i]!.flow === items[i - 1]!.flow ? run + 1 : 1;
    longest = Math.max(longest, run);
  }
  return longest;
}

const count = (items: Item[], flow: string) => items.filter((i) => i.flow === flow).length;

describe("FairQueue (fair discipline)", () => {
  it("serves a flow with one item within two shifts of a flow with a thousand, when pushed after them", () => {
    const queue = new FairQueue<Item>();
    pushMany(queue, { id: "big" }, 1000);
    const [single] = pushMany(queue, { id: "small" }, 1);
    expect(queue.size).toBe(1001);
    const firstTwo = shiftMany(queue, 2);
    expect(firstTwo).toContain(single);
    expect(queue.size).toBe(999);
    // The big flow's items keep their own order.
    expect(shiftMany(queue, 999).map((i) => i.n)).toEqual(
      Array.from({ length: 1000 }, (_, n) => n).filter((n) => !firstTwo.some((i) => i.flow === "big" && i.n === n)),
    );
  });

  it("serves the single item within two shifts even when it arrives after the big flow was served a while", () => {
    const queue = new FairQueue<Item>();
    pushMany(queue, { id: "big" }, 1000);
    const served = shiftMany(queue, 37);
    expect(served.every((i) => i.flow === "big")).toBe(true);
    const [single] = pushMany(queue, { id: "small" }, 1);
    expect(shiftMany(queue, 2)).toContain(single);
    expect(queue.size).toBe(1000 - 37 - 1);
  });

  it("gives weights 1:4 shares within 5% of 1/5 and 4/5 over 500 shifts", () => {
    const queue = new FairQueue<Item>();
    // Interleave the pushes so arrival order favours neither flow.
    for (let n = 0; n < 1000; n++) {
      queue.push({ id: "light", weight: 1 }, { flow: "light", n, priority: "bulk" });
      queue.push({ id: "heavy", weight: 4 }, { flow: "heavy", n, priority: "bulk" });
    }
    const served = shiftMany(queue, 500);
    expect(served).toHaveLength(500);
    const lightShare = count(served, "light") / 500;
    const heavyShare = count(served, "heavy") / 500;
    expect(Math.abs(lightShare - 1 / 5)).toBeLessThanOrEqual(0.05);
    expect(Math.abs(heavyShare - 4 / 5)).toBeLessThanOrEqual(0.05);
    // The share holds locally too, not only on average: every window of 50 has 10 ± 2 light items.
    for (let start = 0; start + 50 <= 500; start += 50) {
      expect(Math.abs(count(served.slice(start, start + 50), "light") - 10)).toBeLessThanOrEqual(2);
    }
    expect(queue.size).toBe(1500);
  });

  it("treats a missing or sub-1 weight as 1 (no flow's share drops to zero)", () => {
    const queue = new FairQueue<Item>();
    for (let n = 0; n < 100; n++) {
      queue.push({ id: "zero", weight: 0 }, { flow: "zero", n, priority: "bulk" });
      queue.push({ id: "default" }, { flow: "default", n, priority: "bulk" });
    }
    const served = shiftMany(queue, 100);
    expect(count(served, "zero")).toBe(50);
    expect(count(served, "default")).toBe(50);
  });

  it("serves every interactive item before any bulk item, whatever the flows, weights and arrival order", () => {
    const queue = new FairQueue<Item>();
    pushMany(queue, { id: "a", weight: 16, priority: "bulk" }, 50);
    pushMany(queue, { id: "b", weight: 1, priority: "interactive" }, 3);
    pushMany(queue, { id: "c", weight: 4, priority: "bulk" }, 20);
    pushMany(queue, { id: "a", weight: 16, priority: "interactive" }, 2, 100);
    const firstBatch = shiftMany(queue, 10);
    expect(firstBatch.slice(0, 5).every((i) => i.priority === "interactive")).toBe(true);
    expect(firstBatch.slice(5).every((i) => i.priority === "bulk")).toBe(true);
    // Both interactive flows got served (fairly among themselves), not only the heavier one.
    expect(count(firstBatch.slice(0, 5), "a")).toBe(2);
    expect(count(firstBatch.slice(0, 5), "b")).toBe(3);

    // An interactive item that arrives while bulk items wait goes straight to the front.
    const late = pushMany(queue, { id: "c", priority: "interactive" }, 1, 500)[0]!;
    expect(queue.shift()).toBe(late);
    const rest = shiftMany(queue, 1000);
    expect(rest.every((i) => i.priority === "bulk")).toBe(true);
    expect(rest).toHaveLength(50 + 20 - 5);
    expect(queue.size).toBe(0);
    expect(queue.shift()).toBeUndefined();
  });

  it("remove() takes out exactly the given waiting item and keeps size right", () => {
    const queue = new FairQueue<Item>();
    const a = pushMany(queue, { id: "a" }, 3);
    const b = pushMany(queue, { id: "b", priority: "interactive" }, 2);
    const c = pushMany(queue, { id: "c" }, 1);
    expect(queue.size).toBe(6);

    expect(queue.remove(a[1]!)).toBe(true);
    expect(queue.size).toBe(5);
    expect(queue.remove(a[1]!)).toBe(false); // already gone
    expect(queue.remove({ flow: "a", n: 0, priority: "bulk" })).toBe(false); // equal but not the same item
    expect(queue.size).toBe(5);

    // Removing a flow's only item drops the flow: nothing of it is ever served.
    expect(queue.remove(c[0]!)).toBe(true);
    expect(queue.remove(b[0]!)).toBe(true);
    expect(queue.size).toBe(3);

    const served = shiftMany(queue, 10);
    expect(served).toEqual([b[1], a[0], a[2]]);
    expect(queue.size).toBe(0);
    expect(queue.shift()).toBeUndefined();
    expect(queue.remove(a[0]!)).toBe(false);
    expect(queue.size).toBe(0);
  });

  it("gives a flow that was idle no burst credit: after A alone was served 100 times, A and B alternate", () => {
    const queue = new FairQueue<Item>();
    pushMany(queue, { id: "A" }, 100);
    expect(shiftMany(queue, 100).every((i) => i.flow === "A")).toBe(true);
    expect(queue.size).toBe(0);

    // A is idle now, and comes back together with a newcomer B.
    pushMany(queue, { id: "B" }, 100);
    pushMany(queue, { id: "A" }, 100, 100);
    const served = shiftMany(queue, 200);
    expect(served).toHaveLength(200);
    // Neither gets a burst: B has no credit for arriving late, A no debt for its 100.
    expect(longestRun(served)).toBeLessThanOrEqual(2);
    for (let prefix = 2; prefix <= 200; prefix += 2) {
      expect(Math.abs(count(served.slice(0, prefix), "A") - prefix / 2)).toBeLessThanOrEqual(1);
    }
  });

  it("does not starve a flow that was served a lot while it stays backlogged, nor lets it starve the newcomer", () => {
    const queue = new FairQueue<Item>();
    pushMany(queue, { id: "A" }, 200);
    expect(shiftMany(queue, 100).every((i) => i.flow === "A")).toBe(true);
    pushMany(queue, { id: "B" }, 100);
    const served = shiftMany(queue, 200);
    expect(count(served, "A")).toBe(100);
    expect(count(served, "B")).toBe(100);
    expect(longestRun(served)).toBeLessThanOrEqual(2);
    // B is served within two shifts of arriving; A is served within two shifts of B's arrival too.
    expect(served.slice(0, 2).map((i) => i.flow).sort()).toEqual(["A", "B"]);
  });

  it("earns a flow nothing for going idle and returning: B back after A ran alone alternates again", () => {
    const queue = new FairQueue<Item>();
    pushMany(queue, { id: "A" }, 300);
    pushMany(queue, { id: "B" }, 20);
    const first = shiftMany(queue, 40);
    expect(count(first, "B")).toBe(20); // B drained, alternating with A
    expect(longestRun(first)).toBeLessThanOrEqual(2);
    // B idle while A is served 100 more times alone.
    expect(shiftMany(queue, 100).every((i) => i.flow === "A")).toBe(true);
    pushMany(queue, { id: "B" }, 50, 20);
    const back = shiftMany(queue, 100);
    expect(count(back, "B")).toBe(50);
    expect(longestRun(back)).toBeLessThanOrEqual(2);
  });
});

describe("FairQueue (cost: each item's estimated work)", () => {
  /** Pushes `count` items of `flow`, each of the given cost. */
  function pushCosted(queue: FairQueue<Item>, flow: Flow, count: number, cost: number | undefined, from = 0): Item[] {
    const items: Item[] = [];
    for (let n = from; n < from + count; n++) {
      const item: Item = { flow: flow.id, n, priority: flow.priority ?? "bulk" };
      if (cost === undefined) queue.push(flow, item);
      else queue.push(flow, item, cost);
      items.push(item);
    }
    return items;
  }

  it("advances a flow's virtual time by its items' cost: cost-4 items get a quarter of the cost-1 flow's grants", () => {
    const queue = new FairQueue<Item>();
    pushCosted(queue, { id: "upload" }, 100, 4);
    pushCosted(queue, { id: "search" }, 400, 1);
    const served = shiftMany(queue, 100);
    // Start tags: upload 0, 4, 8, …; search 0, 1, 2, …; a tie goes to the flow that queued first.
    expect(served.slice(0, 10).map((i) => i.flow)).toEqual([
      "upload", "search", "search", "search", "search",
      "upload", "search", "search", "search", "search",
    ]);
    expect(count(served, "upload")).toBe(20);
    expect(count(served, "search")).toBe(80);
    // Equal work, not equal items: 20 × 4 = 80 × 1.
    for (let start = 0; start + 20 <= 100; start += 20) expect(count(served.slice(start, start + 20), "upload")).toBe(4);
  });

  it("divides cost by weight: weight 4 with cost 4 and weight 1 with cost 1 alternate", () => {
    const queue = new FairQueue<Item>();
    pushCosted(queue, { id: "heavy-and-big", weight: 4 }, 50, 4);
    pushCosted(queue, { id: "light-and-small", weight: 1 }, 50, 1);
    const served = shiftMany(queue, 60);
    expect(count(served, "heavy-and-big")).toBe(30);
    expect(longestRun(served)).toBeLessThanOrEqual(2);
  });

  it("charges 1 when no cost is given: an unpriced flow and a cost-1 flow alternate", () => {
    const queue = new FairQueue<Item>();
    pushCosted(queue, { id: "unpriced" }, 50, undefined);
    pushCosted(queue, { id: "one" }, 50, 1);
    const served = shiftMany(queue, 40);
    expect(count(served, "unpriced")).toBe(20);
    expect(longestRun(served)).toBe(1);
  });

  it("charges each item its own cost, also after remove() took an item out of the middle", () => {
    const queue = new FairQueue<Item>();
    // Flow a: costs 1, 100, 1, 1 — the 100 is removed before anything is served.
    const a = [
      ...pushCosted(queue, { id: "a" }, 1, 1, 0),
      ...pushCosted(queue, { id: "a" }, 1, 100, 1),
      ...pushCosted(queue, { id: "a" }, 2, 1, 2),
    ];
    pushCosted(queue, { id: "b" }, 10, 1);
    expect(queue.remove(a[1]!)).toBe(true);
    // Had the costs slipped by one (the 100 charged to a[2]), b would be served ten times after a[2].
    const served = shiftMany(queue, 6);
    expect(served.map((i) => `${i.flow}${i.n}`)).toEqual(["a0", "b0", "a2", "b1", "a3", "b2"]);
  });

  it("lets a cheap newcomer in at once behind an expensive backlog (its tag is the current virtual time)", () => {
    const queue = new FairQueue<Item>();
    pushCosted(queue, { id: "batch" }, 10, 8);
    expect(shiftMany(queue, 3).every((i) => i.flow === "batch")).toBe(true);
    const [single] = pushCosted(queue, { id: "search" }, 1, 1);
    expect(queue.shift()).toBe(single);
  });

  it("ignores cost under fifo", () => {
    const queue = new FairQueue<Item>("fifo");
    const pushed = [...pushCosted(queue, { id: "a" }, 3, 50), ...pushCosted(queue, { id: "b" }, 3, 1)];
    expect(shiftMany(queue, 6)).toEqual(pushed);
  });
});

describe("FairQueue (fifo discipline)", () => {
  it("shifts strictly in arrival order regardless of flow, weight and priority", () => {
    const queue = new FairQueue<Item>("fifo");
    const flows: Flow[] = [
      { id: "a", weight: 1, priority: "bulk" },
      { id: "b", weight: 16, priority: "interactive" },
      { id: "c", weight: 4, priority: "bulk" },
      { id: "a", weight: 1, priority: "interactive" },
    ];
    const pushed: Item[] = [];
    // 1000 from a first (the noisy neighbour), then a mix.
    pushed.push(...pushMany(queue, flows[0]!, 1000));
    for (let n = 0; n < 40; n++) pushed.push(...pushMany(queue, flows[(n * 7) % flows.length]!, 1, 2000 + n));
    expect(queue.size).toBe(1040);
    const served = shiftMany(queue, 2000);
    expect(served).toHaveLength(1040);
    for (let i = 0; i < served.length; i++) expect(served[i]).toBe(pushed[i]);
    expect(queue.shift()).toBeUndefined();
  });

  it("remove() works under fifo too", () => {
    const queue = new FairQueue<Item>("fifo");
    const items = [
      ...pushMany(queue, { id: "a" }, 2),
      ...pushMany(queue, { id: "b", priority: "interactive" }, 2),
    ];
    expect(queue.remove(items[2]!)).toBe(true);
    expect(queue.size).toBe(3);
    expect(shiftMany(queue, 5)).toEqual([items[0], items[1], items[3]]);
    expect(queue.size).toBe(0);
  });
});
