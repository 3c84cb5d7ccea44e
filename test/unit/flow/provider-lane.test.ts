import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { ProviderUnavailableError } from "../../../src/core/errors.js";
import { ProviderLane } from "../../../src/flow/provider-lane.js";

const failing = () => Promise.reject(Object.assign(new Error("upstream 500"), { status: 500 }));
const always = () => true;

function lane(overrides: Partial<ConstructorParameters<typeof ProviderLane>[1]> = {}) {
  return new ProviderLane("test", { maxConcurrent: 2, failureThreshold: 3, cooldownMs: 100, queueTimeoutMs: 200, ...overrides });
}

describe("ProviderLane", () => {
  it("opens after the threshold of consecutive failures and then fails fast without calling", async () => {
    const l = lane();
    for (let i = 0; i < 3; i++) await expect(l.run(failing, always)).rejects.toThrow("upstream 500");
    expect(l.breakerState).toBe("open");
    let called = false;
    const refusal = await l.run(async () => (called = true), always).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(ProviderUnavailableError);
    expect((refusal as ProviderUnavailableError).details).toMatchObject({ reason: "circuit_open" });
    expect((refusal as ProviderUnavailableError).retryAfterSeconds).toBe(1);
    expect(called).toBe(false);
  });

  it("lets one probe through after the cooldown; its success closes the breaker", async () => {
    const l = lane();
    for (let i = 0; i < 3; i++) await expect(l.run(failing, always)).rejects.toThrow();
    await sleep(120);
    expect(l.breakerState).toBe("half_open");
    let release!: () => void;
    const probe = l.run(() => new Promise<string>((resolve) => (release = () => resolve("ok"))), always);
    // While the probe is out, everyone else still fails fast.
    await expect(l.run(async () => "other", always)).rejects.toBeInstanceOf(ProviderUnavailableError);
    release();
    await expect(probe).resolves.toBe("ok");
    expect(l.breakerState).toBe("closed");
    await expect(l.run(async () => "after", always)).resolves.toBe("after");
  });

  it("re-opens at once when the probe fails", async () => {
    const l = lane();
    for (let i = 0; i < 3; i++) await expect(l.run(failing, always)).rejects.toThrow();
    await sleep(120);
    await expect(l.run(failing, always)).rejects.toThrow("upstream 500");
    expect(l.breakerState).toBe("open");
  });

  it("does not count errors the caller says are not the provider's fault", async () => {
    const l = lane();
    for (let i = 0; i < 5; i++) await expect(l.run(failing, () => false)).rejects.toThrow();
    expect(l.breakerState).toBe("closed");
  });

  it("a success resets the count of consecutive failures", async () => {
    const l = lane();
    for (let round = 0; round < 3; round++) {
      await expect(l.run(failing, always)).rejects.toThrow();
      await expect(l.run(failing, always)).rejects.toThrow();
      await l.run(async () => "ok", always);
    }
    expect(l.breakerState).toBe("closed");
  });

  it("holds at most maxConcurrent calls in flight, queues the rest in order, and refuses after the queue timeout", async () => {
    const l = lane({ maxConcurrent: 2, queueTimeoutMs: 150 });
    let inFlight = 0;
    let peak = 0;
    const order: number[] = [];
    const call = (n: number, ms: number) =>
      l.run(async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        order.push(n);
        await sleep(ms);
        inFlight--;
        return n;
      }, always);
    const results = await Promise.all([call(1, 40), call(2, 40), call(3, 10), call(4, 10)]);
    expect(results).toEqual([1, 2, 3, 4]);
    expect(peak).toBe(2);
    expect(order).toEqual([1, 2, 3, 4]);

    const long = [call(5, 400), call(6, 400)];
    const refused = await call(7, 1).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ProviderUnavailableError);
    expect((refused as ProviderUnavailableError).details).toMatchObject({ reason: "lane_saturated" });
    await Promise.all(long);
  });

  it("serves waiting tenants fairly: one tenant's queued burst does not stand in front of another's single call", async () => {
    const l = lane({ maxConcurrent: 1, queueTimeoutMs: 5_000 });
    const order: string[] = [];
    const call = (tenant: string, n: number) =>
      l.run(
        async () => {
          order.push(`${tenant}${n}`);
          await sleep(5);
        },
        always,
        { id: tenant, priority: "interactive" },
      );
    const burst = Array.from({ length: 10 }, (_, i) => call("a", i));
    await sleep(1); // a0 is running, a1…a9 wait
    const single = call("b", 0);
    await Promise.all([...burst, single]);
    // b0 starts right after the call in flight and at most one more of a's.
    expect(order.indexOf("b0")).toBeLessThanOrEqual(2);
    expect(order.filter((o) => o.startsWith("a"))).toEqual(Array.from({ length: 10 }, (_, i) => `a${i}`));
  });

  it("paces starts to maxPerMinute after the burst allowance, and never drops a queued call", async () => {
    // 600 a minute = one start per 100 ms, a burst of 60 (a tenth of a minute's worth) at once.
    const l = lane({ maxConcurrent: 100, maxPerMinute: 600, queueTimeoutMs: 5_000 });
    const started: number[] = [];
    const t0 = Date.now();
    const calls = Array.from({ length: 63 }, () =>
      l.run(async () => {
        started.push(Date.now() - t0);
      }, always),
    );
    await Promise.all(calls);
    expect(started).toHaveLength(63);
    const sorted = [...started].sort((a, b) => a - b);
    expect(sorted[59]!).toBeLessThan(80); // the burst went at once
    // The three beyond the burst are spaced by the pace (100 ms), within timer slack.
    expect(sorted[60]! - sorted[59]!).toBeGreaterThanOrEqual(70);
    expect(sorted[62]! - sorted[60]!).toBeGreaterThanOrEqual(170);
    expect(sorted[62]!).toBeLessThan(1_000);
  });

  describe("reserved slots", () => {
    /** A call that holds its slot until released; `started` tells whether it has entered. */
    function heldCall(l: ProviderLane, tenant: string) {
      let release: (() => void) | undefined;
      const state = { started: false, release: () => release?.() };
      const done = l.run(
        () =>
          new Promise<void>((resolve) => {
            state.started = true;
            release = resolve;
          }),
        always,
        { id: tenant, priority: "interactive" },
      );
      return Object.assign(state, { done });
    }

    it("a tenant alone in the lane gets every slot", async () => {
      const l = lane({ maxConcurrent: 4, queueTimeoutMs: 5_000, reservedSlots: 1 });
      const calls = Array.from({ length: 6 }, () => heldCall(l, "a"));
      await sleep(5);
      expect(calls.filter((c) => c.started)).toHaveLength(4);
      for (const c of calls) c.release();
      await sleep(5);
      for (const c of calls) c.release();
      await Promise.all(calls.map((c) => c.done));
    });

    it("while another tenant is about, a flooding tenant leaves a slot free, so the other's call starts at once", async () => {
      const l = lane({ maxConcurrent: 4, queueTimeoutMs: 5_000, reservedSlots: 1, reservationWindowMs: 10_000 });
      await l.run(async () => undefined, always, { id: "victim" }); // the victim has used the lane
      const flood = Array.from({ length: 8 }, () => heldCall(l, "aggressor"));
      await sleep(5);
      expect(flood.filter((c) => c.started)).toHaveLength(3);
      const victim = heldCall(l, "victim");
      await sleep(1);
      expect(victim.started).toBe(true); // no waiting for one of the flood's calls to end
      // The flood's next call takes the slot the victim frees, not a fourth of its own.
      victim.release();
      await victim.done;
      flood[0]!.release();
      await sleep(5);
      expect(flood.filter((c) => c.started)).toHaveLength(4); // flood[0] ended, flood[3] started
      expect(flood.filter((c) => c.started).length - 1).toBe(3); // …so three are in flight
      for (let round = 0; round < 3; round++) {
        for (const c of flood) c.release();
        await sleep(5);
      }
      await Promise.all(flood.map((c) => c.done));
    });

    it("the held-back slot is given to the flood once the other tenant has been gone for the window", async () => {
      const l = lane({ maxConcurrent: 2, queueTimeoutMs: 5_000, reservedSlots: 1, reservationWindowMs: 400 });
      await l.run(async () => undefined, always, { id: "victim" });
      const flood = [heldCall(l, "aggressor"), heldCall(l, "aggressor")];
      await sleep(5);
      expect(flood.map((c) => c.started)).toEqual([true, false]);
      await sleep(1_000);
      expect(flood.map((c) => c.started)).toEqual([true, true]);
      for (const c of flood) c.release();
      await Promise.all(flood.map((c) => c.done));
    });

    it("is off for the FIFO baseline and with reservedSlots: 0", async () => {
      for (const options of [{ discipline: "fifo" as const }, { reservedSlots: 0 }]) {
        const l = lane({ maxConcurrent: 2, queueTimeoutMs: 5_000, ...options });
        await l.run(async () => undefined, always, { id: "victim" });
        const flood = [heldCall(l, "aggressor"), heldCall(l, "aggressor")];
        await sleep(5);
        expect(flood.map((c) => c.started)).toEqual([true, true]);
        for (const c of flood) c.release();
        await Promise.all(flood.map((c) => c.done));
      }
    });
  });
});
