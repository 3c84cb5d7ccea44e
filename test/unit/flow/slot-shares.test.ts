import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { SlotShares } from "../../../src/flow/slot-shares.js";

/** Takes slots for `flowId` while the rule allows, as the lane would; returns how many it got. */
function fill(shares: SlotShares, flowId: string, slots: number, inUse: () => number, take: () => void): number {
  let taken = 0;
  while (inUse() < slots && shares.mayTake(flowId, inUse())) {
    shares.took(flowId);
    take();
    taken++;
  }
  return taken;
}

describe("SlotShares", () => {
  it("gives a tenant alone every slot", () => {
    const shares = new SlotShares(4, { keepFree: 1, windowMs: 10_000 });
    let inUse = 0;
    shares.seen({ id: "a" });
    expect(fill(shares, "a", 4, () => inUse, () => inUse++)).toBe(4);
  });

  it("with a tenant within its share present, a borrower leaves one slot free; the other takes it at once", () => {
    const shares = new SlotShares(4, { keepFree: 1, windowMs: 10_000 });
    let inUse = 0;
    shares.seen({ id: "victim" });
    shares.seen({ id: "flood" });
    // Share 2 each: the flood takes its 2, borrows a third, and leaves the fourth for the victim.
    expect(fill(shares, "flood", 4, () => inUse, () => inUse++)).toBe(3);
    expect(shares.mayTake("victim", inUse)).toBe(true);
    shares.took("victim");
    inUse++;
    // One of the flood's calls ends: with the victim holding 1 of its 2, the flood may not take it back.
    shares.gaveBack("flood");
    inUse--;
    expect(shares.mayTake("flood", inUse)).toBe(false);
    expect(shares.mayTake("victim", inUse)).toBe(true);
    // Once the victim holds its whole share, nobody below share is left to keep a slot for.
    shares.took("victim");
    inUse++;
    shares.gaveBack("flood");
    inUse--;
    expect(shares.mayTake("flood", inUse)).toBe(true);
  });

  it("shares by weight: a weight-3 tenant gets 3 of 4 slots before it must leave one free", () => {
    const shares = new SlotShares(4, { keepFree: 1, windowMs: 10_000 });
    let inUse = 0;
    shares.seen({ id: "small", weight: 1 });
    shares.seen({ id: "big", weight: 3 });
    expect(fill(shares, "big", 4, () => inUse, () => inUse++)).toBe(3);
    expect(shares.mayTake("small", inUse)).toBe(true);
  });

  it("allots whole slots by largest remainder: of 8, weight 16 gets 6 and weight 4 gets 2, both at once", () => {
    const shares = new SlotShares(8, { keepFree: 2, windowMs: 10_000 });
    let inUse = 0;
    shares.seen({ id: "victim", weight: 4 });
    shares.seen({ id: "flood", weight: 16 });
    // 6.4 and 1.6 slots: the flood holds its 6 and must leave the victim's 2 free.
    expect(fill(shares, "flood", 8, () => inUse, () => inUse++)).toBe(6);
    expect(fill(shares, "victim", 8, () => inUse, () => inUse++)).toBe(2);
  });

  it("keeps a tenant's second slot free while its first is busy (a search while its own upload runs)", () => {
    const shares = new SlotShares(8, { keepFree: 2, windowMs: 10_000 });
    shares.seen({ id: "victim", weight: 4 });
    shares.seen({ id: "flood", weight: 16 });
    shares.took("victim"); // its upload
    let inUse = 1;
    expect(fill(shares, "flood", 8, () => inUse, () => inUse++)).toBe(6);
    // 7 in use: the flood may not borrow the last slot, the victim's second request takes it at once.
    expect(shares.mayTake("flood", inUse)).toBe(false);
    expect(shares.mayTake("victim", inUse)).toBe(true);
  });

  it("gives every present tenant a slot of its own even when shares round below one", () => {
    const shares = new SlotShares(4, { keepFree: 4, windowMs: 10_000 });
    shares.seen({ id: "big", weight: 16 });
    for (const id of ["s1", "s2", "s3"]) shares.seen({ id, weight: 1 });
    let inUse = 0;
    // 3.37 slots for big, 0.21 for each small one: each small one is allotted one, big one.
    expect(fill(shares, "big", 4, () => inUse, () => inUse++)).toBe(1);
    for (const id of ["s1", "s2", "s3"]) expect(fill(shares, id, 4, () => inUse, () => inUse++)).toBe(1);
  });

  it("keeps at most keepFree slots free, however many tenants are below their share", () => {
    const shares = new SlotShares(8, { keepFree: 2, windowMs: 10_000 });
    let inUse = 0;
    for (const id of ["a", "b", "c", "d"]) shares.seen({ id });
    // Share 2 each; a borrows until 2 slots are left for b, c and d together.
    expect(fill(shares, "a", 8, () => inUse, () => inUse++)).toBe(6);
  });

  it("forgets a tenant gone for the window, and gives its kept slot back", async () => {
    const shares = new SlotShares(2, { keepFree: 1, windowMs: 60 });
    let inUse = 0;
    shares.seen({ id: "victim" });
    shares.seen({ id: "flood" });
    expect(fill(shares, "flood", 2, () => inUse, () => inUse++)).toBe(1);
    await sleep(100);
    expect(shares.mayTake("flood", inUse)).toBe(true);
  });

  it("never forgets a tenant with a call in the lane, however long it runs", async () => {
    const shares = new SlotShares(4, { keepFree: 1, windowMs: 30 });
    shares.seen({ id: "victim" });
    shares.took("victim");
    shares.seen({ id: "flood" });
    await sleep(60);
    // victim holds 1 of its share of 2: the flood (holding 2) may not take the last free slot.
    shares.took("flood");
    shares.took("flood");
    expect(shares.mayTake("flood", 3)).toBe(false);
  });

  it("is off with keepFree 0", () => {
    const shares = new SlotShares(2, { keepFree: 0, windowMs: 10_000 });
    let inUse = 0;
    shares.seen({ id: "victim" });
    shares.seen({ id: "flood" });
    expect(fill(shares, "flood", 2, () => inUse, () => inUse++)).toBe(2);
  });
});
