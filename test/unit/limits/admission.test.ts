import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { OverloadedError, RateLimitedError } from "../../../src/core/errors.js";
import { AdmissionController } from "../../../src/limits/admission.js";
import { MemoryCounterStore } from "../../../src/limits/counter-store.js";
import { createLogger } from "../../../src/observability/logger.js";
import { issueTenantContext } from "../../../src/core/tenant-context.js";

/** The real memory store, made slow: the shape of a shared store across a network. */
class SlowStore extends MemoryCounterStore {
  override async acquireSlot(key: string, max: number): Promise<boolean> {
    await sleep(20);
    return super.acquireSlot(key, max);
  }
}

const tenant = (n: number) =>
  issueTenantContext({
    tenantId: `00000000-0000-4000-8000-00000000000${n}`,
    keyId: `00000000-0000-4000-8000-00000000010${n}`,
    project: "p",
    environment: "prod", scopes: ["owner"],
    requestId: `r${n}`,
  });
const quota = { plan: "t", requestsPerMinute: null, tokensPerMinute: null, maxConcurrency: 5, keyRequestsPerMinute: null, weight: 1 };
const keyOf = (tenantNumber: number, keyNumber: number) =>
  issueTenantContext({
    tenantId: `00000000-0000-4000-8000-00000000000${tenantNumber}`,
    keyId: `00000000-0000-4000-8000-00000000020${keyNumber}`,
    project: "p",
    environment: "prod", scopes: ["owner"],
    requestId: `k${keyNumber}`,
  });

describe("AdmissionController", () => {
  it("keeps the instance ceiling when requests arrive together and the counters are slow", async () => {
    const admission = new AdmissionController(new SlowStore(), { maxInFlight: 1 }, createLogger("silent"));
    const results = await Promise.allSettled([admission.admit(tenant(1), quota), admission.admit(tenant(2), quota)]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    const rejected = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(rejected.reason).toBeInstanceOf(OverloadedError);
  });

  it("gives the in-flight place back when a tenant limit refuses the request", async () => {
    const admission = new AdmissionController(new MemoryCounterStore(), { maxInFlight: 1 }, createLogger("silent"));
    const one = { ...quota, maxConcurrency: 1 };
    const first = await admission.admit(tenant(1), one);
    await first.release();
    const held = await admission.admit(tenant(1), one);
    await expect(admission.admit(tenant(1), one)).rejects.toBeInstanceOf(OverloadedError);
    await held.release();
    // A refusal by the tenant's own limit must not leak a place of the instance ceiling.
    const wide = new AdmissionController(new MemoryCounterStore(), { maxInFlight: 2 }, createLogger("silent"));
    const a = await wide.admit(tenant(1), one);
    await expect(wide.admit(tenant(1), one)).rejects.toBeInstanceOf(RateLimitedError);
    const b = await wide.admit(tenant(2), one);
    await a.release();
    await b.release();
  });

  it("releases a ticket once, however often release is called", async () => {
    const admission = new AdmissionController(new MemoryCounterStore(), { maxInFlight: 1 }, createLogger("silent"));
    const ticket = await admission.admit(tenant(1), quota);
    await ticket.release();
    await ticket.release();
    const again = await admission.admit(tenant(1), quota);
    await expect(admission.admit(tenant(2), quota)).rejects.toBeInstanceOf(OverloadedError);
    await again.release();
  });

  it("refuses with token_limit once the minute's tokens are used up, for that tenant only", async () => {
    const admission = new AdmissionController(new MemoryCounterStore(), { maxInFlight: 10 }, createLogger("silent"));
    const limited = { ...quota, tokensPerMinute: 1000 };
    await (await admission.admit(tenant(1), limited)).release();
    await admission.recordTokens(tenant(1).tenantId, 600);
    await (await admission.admit(tenant(1), limited)).release();
    await admission.recordTokens(tenant(1).tenantId, 400);
    const refusal = await admission.admit(tenant(1), limited).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(RateLimitedError);
    expect((refusal as RateLimitedError).reason).toBe("token_limit");
    expect((refusal as RateLimitedError).rateLimit).toMatchObject({ limit: 1000, remaining: 0 });
    expect((refusal as RateLimitedError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect((refusal as RateLimitedError).retryAfterSeconds).toBeLessThanOrEqual(60);
    // Another tenant's tokens are its own.
    await (await admission.admit(tenant(2), limited)).release();
  });

  it("counts a key's own requests/min besides the tenant's, and reports the tighter window", async () => {
    const admission = new AdmissionController(new MemoryCounterStore(), { maxInFlight: 10 }, createLogger("silent"));
    const perKey = { ...quota, requestsPerMinute: 10, keyRequestsPerMinute: 2 };
    const first = await admission.admit(keyOf(3, 1), perKey);
    expect(first.rateLimit).toMatchObject({ limit: 2, remaining: 1 });
    await first.release();
    await (await admission.admit(keyOf(3, 1), perKey)).release();
    const refusal = await admission.admit(keyOf(3, 1), perKey).catch((e: unknown) => e);
    expect((refusal as RateLimitedError).reason).toBe("rate_limit");
    // The same tenant's other key is not held back by the first key's window …
    const other = { ...quota, requestsPerMinute: 10, keyRequestsPerMinute: null };
    const ticket = await admission.admit(keyOf(3, 2), other);
    // … but the tenant's window counted all four requests (the refused one included): 10 − 4 = 6 left.
    expect(ticket.rateLimit).toMatchObject({ limit: 10, remaining: 6 });
    await ticket.release();
  });

  it("paces a large body only while another tenant has a request in service, not its own or another large body", async () => {
    // 1 MB/s: a 100 KB piece is due 100 ms later while contended.
    const admission = new AdmissionController(new MemoryCounterStore(), { maxInFlight: 16, largeBodyPace: 1_000_000 }, createLogger("silent"));
    const pace = admission.largeBodyPace(tenant(1).tenantId)!;
    expect(pace(100_000)).toBe(0); // nobody else here
    const own = await admission.admit(tenant(1), quota);
    expect(pace(100_000)).toBe(0); // its own requests do not slow it
    // Another tenant's large body (a seat and a place) does not slow it either: two uploads never pace each other.
    const otherUpload = await admission.admit(tenant(2), quota);
    const otherPlace = await admission.takeBodyPlace(tenant(2), quota);
    expect(pace(100_000)).toBe(0);
    // Another tenant's search in service does.
    const search = await admission.admit(tenant(3), quota);
    expect(pace(100_000)).toBeGreaterThan(90);
    await search.release();
    expect(pace(100_000)).toBe(0);
    otherPlace.release();
    await otherUpload.release();
    await own.release();
  });

  it("reads large bodies at full speed when no pace is set", () => {
    const admission = new AdmissionController(new MemoryCounterStore(), { maxInFlight: 16 }, createLogger("silent"));
    expect(admission.largeBodyPace(tenant(1).tenantId)).toBeUndefined();
    const off = new AdmissionController(new MemoryCounterStore(), { maxInFlight: 16, largeBodyPace: 0 }, createLogger("silent"));
    expect(off.largeBodyPace(tenant(1).tenantId)).toBeUndefined();
  });
});
