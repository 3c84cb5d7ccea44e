import { afterEach, describe, expect, it, vi } from "vitest";
import { FairSeats, NoSeatError, type FairSeatsOptions, type Seat } from "../../../src/flow/fair-seats.js";
import type { Flow } from "../../../src/flow/fair-queue.js";

/**
 * The instance's seats (issue 16, after Kubernetes' API Priority and Fairness): a few requests in
 * service, the rest in per-tenant queues served by weighted fair queuing with each request's cost,
 * short per-tenant queues, a wait limit, seats kept free for a tenant within its share, and a seat
 * a request steps away from while it waits on a provider. Every test drives the seats by hand and
 * checks the exact grants, so a broken rule shows as a different order or count, not as a timing.
 */
const options = (overrides: Partial<FairSeatsOptions> = {}): FairSeatsOptions => ({
  seats: 1,
  maxQueuedPerFlow: 1000,
  maxQueued: 10_000,
  maxWaitMs: 60_000,
  keepFree: 0,
  windowMs: 1000,
  ...overrides,
});

/** Lets granted seats' promise callbacks run (a grant resolves a promise; nothing here needs a timer). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** Records every grant, in order, and holds the seats until the test releases them. */
class Recorder {
  readonly order: string[] = [];
  readonly held: { flow: string; seat: Seat }[] = [];
  readonly refused: { flow: string; error: unknown }[] = [];

  constructor(private readonly seats: FairSeats) {}

  take(flow: Flow, cost?: number): Promise<Seat | undefined> {
    return this.seats.take(flow, cost).then(
      (seat) => {
        this.order.push(flow.id);
        this.held.push({ flow: flow.id, seat });
        return seat;
      },
      (error: unknown) => {
        this.refused.push({ flow: flow.id, error });
        return undefined;
      },
    );
  }

  /** Releases the oldest held seat and lets the next grant happen. */
  async releaseOldest(): Promise<void> {
    const held = this.held.shift();
    if (!held) throw new Error("no seat held");
    held.seat.release();
    await settle();
  }
}

const countOf = (items: string[], id: string) => items.filter((i) => i === id).length;

/** What a take came to without any release: the refusal, or a marker if it was granted or still waits. */
async function outcomeOf(taking: Promise<Seat>): Promise<unknown> {
  let outcome: unknown = "still waiting";
  taking.then(
    () => (outcome = "granted"),
    (error: unknown) => (outcome = error),
  );
  await settle();
  return outcome;
}

function expectRefusal(error: unknown, why: NoSeatError["why"]): void {
  expect(error).toBeInstanceOf(NoSeatError);
  expect((error as NoSeatError).why).toBe(why);
}

afterEach(() => {
  vi.useRealTimers();
});

describe("FairSeats", () => {
  it("gives a flow alone every seat, and queues it only beyond them", async () => {
    // Shares on, as admission runs them: alone, a flow is never held back for anyone.
    const seats = new FairSeats(options({ seats: 4, keepFree: 1 }));
    const rec = new Recorder(seats);
    for (let i = 0; i < 4; i++) void rec.take({ id: "alone" });
    await settle();
    expect(rec.order).toEqual(["alone", "alone", "alone", "alone"]);
    expect(seats.inService).toBe(4);
    expect(seats.waiting).toBe(0);

    void rec.take({ id: "alone" });
    await settle();
    expect(rec.order).toHaveLength(4);
    expect(seats.waiting).toBe(1);
    await rec.releaseOldest();
    expect(rec.order).toHaveLength(5);
    expect(seats.inService).toBe(4);
    expect(seats.waiting).toBe(0);
  });

  it("holds a flow to maxPerFlow seats even with seats free, lets another flow take them at once, and grants the flow's next at its own release", async () => {
    const seats = new FairSeats(options({ seats: 2, keepFree: 1, maxPerFlow: 1 }));
    const rec = new Recorder(seats);
    for (let i = 0; i < 3; i++) void rec.take({ id: "hog" });
    await settle();
    // Alone, and a seat still free: one in service, the rest wait.
    expect(rec.order).toEqual(["hog"]);
    expect(seats.inService).toBe(1);
    expect(seats.waiting).toBe(2);

    // Another flow is not queued behind the hog's backlog: the free seat is its own at once.
    void rec.take({ id: "other" });
    await settle();
    expect(rec.order).toEqual(["hog", "other"]);

    // The hog's release lets its next one in (and only one).
    await rec.releaseOldest();
    expect(rec.order).toEqual(["hog", "other", "hog"]);
    expect(seats.inService).toBe(2);
    expect(seats.waiting).toBe(1);
  });

  it("counts a seat stepped away from (away) as not held, and held again after, toward maxPerFlow", async () => {
    const seats = new FairSeats(options({ seats: 2, maxPerFlow: 1 }));
    const rec = new Recorder(seats);
    const first = await rec.take({ id: "a" });
    void rec.take({ id: "a" });
    await settle();
    expect(rec.order).toEqual(["a"]);
    let resume: () => void = () => undefined;
    const away = first!.away(() => new Promise<void>((resolve) => (resume = resolve)));
    await settle();
    // Stepped away: the flow holds no seat, so its waiting request gets one.
    expect(rec.order).toEqual(["a", "a"]);
    resume();
    await away;
    // Back without queueing (it was admitted): two held for the moment, over the cap, by design.
    expect(seats.inService).toBe(2);
    void rec.take({ id: "a" });
    await settle();
    expect(rec.order).toHaveLength(2);
    expect(seats.waiting).toBe(1);
  });

  it("grants waiting requests in weighted fair order: weights 1 and 3 get 1:3 while both are backlogged", async () => {
    const seats = new FairSeats(options({ seats: 1 }));
    const rec = new Recorder(seats);
    void rec.take({ id: "first" }); // holds the only seat: everything after it waits
    await settle();
    for (let i = 0; i < 40; i++) {
      void rec.take({ id: "light", weight: 1 });
      void rec.take({ id: "heavy", weight: 3 });
    }
    await settle();
    expect(seats.waiting).toBe(80);
    for (let i = 0; i < 40; i++) await rec.releaseOldest();
    const granted = rec.order.slice(1);
    expect(granted).toHaveLength(40);
    // Start tags: light 0, 1, 2, …; heavy 0, ⅓, ⅔, 1, …; a tie goes to the flow that queued first.
    expect(granted.slice(0, 8)).toEqual(["light", "heavy", "heavy", "heavy", "light", "heavy", "heavy", "heavy"]);
    expect(countOf(granted, "light")).toBe(10);
    expect(countOf(granted, "heavy")).toBe(30);
    // FIFO would have alternated (they were queued alternately): 20 and 20.
  });

  it("charges each request its cost: a flow of cost-4 requests gets a quarter of the grants of a cost-1 flow", async () => {
    const seats = new FairSeats(options({ seats: 1 }));
    const rec = new Recorder(seats);
    void rec.take({ id: "first" });
    await settle();
    for (let i = 0; i < 50; i++) {
      void rec.take({ id: "uploads" }, 4);
      void rec.take({ id: "searches" }, 1);
    }
    await settle();
    for (let i = 0; i < 40; i++) await rec.releaseOldest();
    const granted = rec.order.slice(1);
    expect(countOf(granted, "uploads")).toBe(8);
    expect(countOf(granted, "searches")).toBe(32);
    expect(granted.slice(0, 5)).toEqual(["uploads", "searches", "searches", "searches", "searches"]);
  });

  it("starves no one: a weight-1 flow's requests are all granted while a weight-100 flow stays backlogged, and everything queued is granted in the end", async () => {
    const seats = new FairSeats(options({ seats: 2 }));
    const rec = new Recorder(seats);
    const pending: Promise<Seat | undefined>[] = [];
    for (let i = 0; i < 2; i++) pending.push(rec.take({ id: "flood", weight: 100 }));
    await settle();
    for (let i = 0; i < 10; i++) pending.push(rec.take({ id: "flood", weight: 100 }));
    for (let i = 0; i < 3; i++) pending.push(rec.take({ id: "light", weight: 1 }));
    await settle();
    // The flood keeps ten waiting all along: each grant of it is followed by a new request.
    let grants = 0;
    while (countOf(rec.order, "light") < 3) {
      if (++grants > 400) throw new Error(`light flow starved: ${countOf(rec.order, "light")} of 3 granted after 400 grants`);
      const before = countOf(rec.order, "flood");
      await rec.releaseOldest();
      if (countOf(rec.order, "flood") > before) pending.push(rec.take({ id: "flood", weight: 100 }));
      await settle();
    }
    // Tags: light 0, 1, 2; the flood's advance by 1/100, so each light request waits ~100 flood grants.
    expect(grants).toBeGreaterThan(150);
    expect(grants).toBeLessThan(260);
    // Then the rest drains: every request queued here is granted, none lost, no seat leaked.
    while (rec.held.length > 0) await rec.releaseOldest();
    const results = await Promise.all(pending);
    expect(results.every((seat) => seat !== undefined)).toBe(true);
    expect(rec.refused).toEqual([]);
    expect(seats.waiting).toBe(0);
    expect(seats.inService).toBe(0);
  });

  it("refuses a flow over its queue limit with flow_queue_full while another flow is present, and the other can still queue", async () => {
    const seats = new FairSeats(options({ seats: 1, maxQueuedPerFlow: 2, maxQueued: 10 }));
    const rec = new Recorder(seats);
    void rec.take({ id: "a" });
    await settle();
    void rec.take({ id: "b" }); // b waits: another flow is present
    void rec.take({ id: "a" });
    void rec.take({ id: "a" });
    await settle();
    expect(seats.waiting).toBe(3);
    expectRefusal(await outcomeOf(seats.take({ id: "a" })), "flow_queue_full");
    expect(seats.waiting).toBe(3);

    // b's own queue is its own: it still has room for one more, then it is refused too.
    void rec.take({ id: "b" });
    await settle();
    expect(seats.waiting).toBe(4);
    expectRefusal(await outcomeOf(seats.take({ id: "b" })), "flow_queue_full");

    // Once one of a's is granted, a has room for one more again.
    await rec.releaseOldest(); // a's seat goes to b (queued first), the next to a
    await rec.releaseOldest();
    expect(rec.order).toEqual(["a", "b", "a"]);
    void rec.take({ id: "a" });
    await settle();
    expect(rec.refused).toEqual([]);
    expect(seats.waiting).toBe(3);
    expectRefusal(await outcomeOf(seats.take({ id: "a" })), "flow_queue_full");
  });

  it("lets a flow alone queue past its per-flow limit, up to the instance's (it holds nobody up)", async () => {
    const seats = new FairSeats(options({ seats: 1, maxQueuedPerFlow: 2, maxQueued: 5 }));
    const rec = new Recorder(seats);
    void rec.take({ id: "alone" });
    await settle();
    for (let i = 0; i < 5; i++) void rec.take({ id: "alone" });
    await settle();
    expect(seats.waiting).toBe(5);
    expect(rec.refused).toEqual([]);
    expectRefusal(await outcomeOf(seats.take({ id: "alone" })), "queue_full");
  });

  it("refuses with queue_full once the instance's queue is full, whatever the flow", async () => {
    const seats = new FairSeats(options({ seats: 1, maxQueuedPerFlow: 10, maxQueued: 3 }));
    const rec = new Recorder(seats);
    void rec.take({ id: "holder" });
    await settle();
    for (const id of ["a", "b", "c"]) void rec.take({ id });
    await settle();
    expect(seats.waiting).toBe(3);
    expectRefusal(await outcomeOf(seats.take({ id: "d" })), "queue_full");
    expectRefusal(await outcomeOf(seats.take({ id: "a" })), "queue_full");
    expect(seats.waiting).toBe(3);
    await rec.releaseOldest();
    void rec.take({ id: "d" });
    await settle();
    expect(seats.waiting).toBe(3);
    expect(rec.refused).toEqual([]);
  });

  it("refuses a request that waited maxWaitMs with timed_out, removes it from the queue, and gives its place to the next", async () => {
    vi.useFakeTimers();
    const seats = new FairSeats(options({ seats: 1, maxQueuedPerFlow: 1, maxWaitMs: 100 }));
    const rec = new Recorder(seats);
    void rec.take({ id: "holder" });
    await vi.advanceTimersByTimeAsync(0);
    void rec.take({ id: "late" });
    await vi.advanceTimersByTimeAsync(50);
    void rec.take({ id: "later" });
    await vi.advanceTimersByTimeAsync(49);
    expect(rec.refused).toEqual([]);
    expect(seats.waiting).toBe(2);

    await vi.advanceTimersByTimeAsync(1);
    expect(rec.refused.map((r) => r.flow)).toEqual(["late"]);
    expectRefusal(rec.refused[0]!.error, "timed_out");
    expect(seats.waiting).toBe(1);
    // Its flow's place in the queue is free again (maxQueuedPerFlow is 1).
    void rec.take({ id: "late" });
    await vi.advanceTimersByTimeAsync(0);
    expect(seats.waiting).toBe(2);

    // The seat goes to a request still waiting, never to the one that gave up.
    await rec.releaseOldest();
    expect(rec.order).toEqual(["holder", "later"]);
    expect(seats.inService).toBe(1);
    await rec.releaseOldest();
    expect(rec.order).toEqual(["holder", "later", "late"]);
    await rec.releaseOldest();
    expect(seats.inService).toBe(0);
    expect(seats.waiting).toBe(0);
    // A granted request's timer was cleared: nothing fires later.
    await vi.advanceTimersByTimeAsync(1000);
    expect(rec.refused).toHaveLength(1);
  });

  it("keeps the last free seat from a flow above its share while a flow below it is present, and gives it after the window (the retry timer)", async () => {
    vi.useFakeTimers();
    const seats = new FairSeats(options({ seats: 4, keepFree: 1, windowMs: 1000 }));
    const rec = new Recorder(seats);
    // The victim was here a moment ago (one request, done): it is present for the window.
    void rec.take({ id: "victim" });
    await vi.advanceTimersByTimeAsync(0);
    await rec.releaseOldest();
    // Share 2 each: the flood takes its 2 and borrows a third, and the fourth is kept free.
    for (let i = 0; i < 4; i++) void rec.take({ id: "flood" });
    await vi.advanceTimersByTimeAsync(0);
    expect(countOf(rec.order, "flood")).toBe(3);
    expect(seats.inService).toBe(3);
    expect(seats.waiting).toBe(1);

    // The victim comes back: it gets the free seat at once, ahead of the flood's older request.
    void rec.take({ id: "victim" });
    await vi.advanceTimersByTimeAsync(0);
    expect(rec.order.slice(-1)).toEqual(["victim"]);
    expect(seats.inService).toBe(4);
    // The victim is done; the seat is free again, and still kept for it (it is present).
    rec.held.splice(rec.held.findIndex((h) => h.flow === "victim"), 1)[0]!.seat.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(seats.inService).toBe(3);
    expect(seats.waiting).toBe(1);

    // No release and no arrival comes: only the retry timer can hand the seat over once the victim
    // has been gone for the window (its last request arrived now: the window ends 1000 ms later).
    await vi.advanceTimersByTimeAsync(999);
    expect(seats.waiting).toBe(1);
    expect(countOf(rec.order, "flood")).toBe(3);
    await vi.advanceTimersByTimeAsync(2);
    expect(countOf(rec.order, "flood")).toBe(4);
    expect(seats.inService).toBe(4);
    expect(seats.waiting).toBe(0);
  });

  it("away() frees the seat for others during the wait and takes it back after, without queueing", async () => {
    const seats = new FairSeats(options({ seats: 1 }));
    const rec = new Recorder(seats);
    const seat = (await rec.take({ id: "chat" }))!;
    void rec.take({ id: "search" });
    await settle();
    expect(seats.waiting).toBe(1);

    let answer!: (value: string) => void;
    const provider = new Promise<string>((resolve) => (answer = resolve));
    let inServiceDuringWait = -1;
    const away = seat.away(async () => {
      await settle();
      inServiceDuringWait = seats.inService;
      return provider;
    });
    await settle();
    // The search got the seat while the chat waits on its provider.
    expect(rec.order).toEqual(["chat", "search"]);
    expect(inServiceDuringWait).toBe(1);
    expect(seats.waiting).toBe(0);

    // The search is done before the provider answers; the chat takes a seat back on return.
    rec.held.find((h) => h.flow === "search")!.seat.release();
    await settle();
    expect(seats.inService).toBe(0);
    answer("the answer");
    await expect(away).resolves.toBe("the answer");
    expect(seats.inService).toBe(1);
    // Back in its seat, the chat holds it: a newcomer waits.
    void rec.take({ id: "other" });
    await settle();
    expect(seats.waiting).toBe(1);
    seat.release();
    await settle();
    expect(rec.order.slice(-1)).toEqual(["other"]);
    rec.held.find((h) => h.flow === "other")!.seat.release();
    expect(seats.inService).toBe(0);
  });

  it("away() takes the seat back even when the wait fails", async () => {
    const seats = new FairSeats(options({ seats: 1 }));
    const seat = await seats.take({ id: "chat" });
    await expect(seat.away(() => Promise.reject(new Error("provider down")))).rejects.toThrow("provider down");
    expect(seats.inService).toBe(1);
    seat.release();
    expect(seats.inService).toBe(0);
  });

  it("a seat released during away() is not taken back: no seat leaks, however often release is called", async () => {
    const seats = new FairSeats(options({ seats: 1 }));
    const rec = new Recorder(seats);
    const seat = (await rec.take({ id: "chat" }))!;
    let answer!: () => void;
    const away = seat.away(() => new Promise<void>((resolve) => (answer = resolve)));
    await settle();
    expect(seats.inService).toBe(0);
    // The request ends (aborted, streamed out) while its provider call is still out.
    seat.release();
    seat.release();
    expect(seats.inService).toBe(0);
    answer();
    await away;
    expect(seats.inService).toBe(0);
    // The one seat is whole: one request gets it at once, the next waits.
    void rec.take({ id: "next" });
    void rec.take({ id: "after" });
    await settle();
    expect(rec.order).toEqual(["chat", "next"]);
    expect(seats.inService).toBe(1);
    expect(seats.waiting).toBe(1);
  });

  it("frees a seat once, however often release is called", async () => {
    const seats = new FairSeats(options({ seats: 1 }));
    const rec = new Recorder(seats);
    const seat = (await rec.take({ id: "a" }))!;
    void rec.take({ id: "b" });
    void rec.take({ id: "c" });
    await settle();
    seat.release();
    seat.release();
    await settle();
    expect(rec.order).toEqual(["a", "b"]);
    expect(seats.inService).toBe(1);
    expect(seats.waiting).toBe(1);
  });
});
