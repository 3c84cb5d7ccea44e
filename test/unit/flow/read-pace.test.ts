import { describe, expect, it } from "vitest";
import { ReadPace } from "../../../src/flow/read-pace.js";

/** A large body is read at a pace while other tenants are served, and at full speed otherwise. */
describe("ReadPace", () => {
  const MB = 1_000_000;
  const setup = (bytesPerSecond = 20 * MB) => {
    let now = 10_000;
    const pace = new ReadPace(bytesPerSecond, () => now);
    return { pace, advance: (ms: number) => (now += ms) };
  };

  it("never holds a body back while nobody else is in service", () => {
    const { pace } = setup();
    for (let i = 0; i < 200; i++) expect(pace.read(64 * 1024, false)).toBe(0);
  });

  it("holds a contended body to its pace: 10 MB at 20 MB/s take half a second however fast they arrive", () => {
    const { pace, advance } = setup();
    let elapsed = 0;
    for (let read = 0; read < 10 * MB; read += 100_000) {
      const wait = pace.read(100_000, true);
      // The caller waits as told before reading on; reading itself is instant here.
      advance(wait);
      elapsed += wait;
    }
    expect(elapsed).toBeGreaterThanOrEqual(495); // the first 5 ms are slack
    expect(elapsed).toBeLessThanOrEqual(500);
  });

  it("carries holds under a millisecond over to the next read instead of setting a timer", () => {
    const { pace } = setup(20 * MB);
    // 10 KB at 20 MB/s is 0.5 ms: within the 5 ms of slack, then owed.
    const waits = Array.from({ length: 12 }, () => pace.read(10_000, true));
    expect(waits.slice(0, 10).every((w) => w === 0)).toBe(true);
    expect(waits[11]).toBeGreaterThanOrEqual(1);
  });

  it("gives no burst for time spent idle, and forgets the debt once the contention ends", () => {
    const { pace, advance } = setup();
    advance(10_000); // a body idle on its network for ten seconds
    expect(pace.read(1 * MB, true)).toBeCloseTo(50 - 5, 5); // 1 MB at 20 MB/s, less the slack
    expect(pace.read(1 * MB, false)).toBe(0);
    // The megabyte read meanwhile is not owed: 100 KB are 5 ms from now, not 55.
    expect(pace.read(100_000, true)).toBeCloseTo(5, 5);
  });

  it("refuses a pace that is not a positive rate", () => {
    expect(() => new ReadPace(0)).toThrow(RangeError);
    expect(() => new ReadPace(Number.NaN)).toThrow(RangeError);
  });
});
