import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { postgresErrorOf } from "../../support/isolation-helpers.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prices, usageCounters, usageEvents } from "../../../src/db/schema.js";
import { recordUsage } from "../../../src/metering/ledger.js";
import { costMicros } from "../../../src/metering/pricing.js";
import { estimateTokens, type UsageRecord } from "../../../src/metering/usage-event.js";
import type { TenantContext } from "../../../src/core/tenant-context.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { contextFor } from "../../support/isolation-helpers.js";
import { counters, ledgerRows } from "../../support/metering-helpers.js";

/**
 * The ledger itself: one row per event id however often it is written, cost from the newest price
 * version in effect (rounded up, version recorded), the internal rate for unpriced models, and
 * usage rows readable only by their own tenant (row-level security, no application filter).
 */
const INTERNAL_RATE = 1000; // micro-units per million tokens
const PROVIDER = "ledger-test";

describe.each(backends)("usage ledger on $name", (backend) => {
  let fence: TestFence;
  let tenant: TestTenant;
  let ctx: TenantContext;
  const model = `priced-${randomUUID().slice(0, 8)}`; // prices are global: a model of this run only

  const record = (overrides: Partial<UsageRecord> = {}): UsageRecord => ({
    eventId: `evt:${randomUUID()}`,
    feature: "chat",
    provider: PROVIDER,
    model,
    inputTokens: 1000,
    outputTokens: 333,
    status: "charged",
    ...overrides,
  });
  const write = (r: UsageRecord, as = ctx) => fence.fence.db.withTenant(as, (scope) => recordUsage(scope, r, INTERNAL_RATE));
  const rowOf = async (eventId: string) => (await ledgerRows(fence, tenant)).find((r) => r.eventId === eventId)!;
  const addPrice = (version: number, input: number, output: number, effectiveFrom = new Date(Date.now() - 60_000)) =>
    fence.fence.db.asPlatformAdmin("test: add price", (tx) =>
      tx.insert(prices).values({ provider: PROVIDER, model, version, inputMicrosPerMTok: input, outputMicrosPerMTok: output, effectiveFrom }),
    );

  beforeAll(async () => {
    fence = await TestFence.start(backend, { env: { FENCE_INTERNAL_MICROS_PER_MTOK: String(INTERNAL_RATE) } });
    tenant = await fence.createTenant();
    ctx = await contextFor(fence, tenant);
  });
  afterAll(async () => {
    await fence?.fence.db.asPlatformAdmin("test: remove prices", (tx) => tx.delete(prices).where(eq(prices.model, model)));
    await fence?.close();
  });

  it("counts an event id once: a replay only raises duplicate_count", async () => {
    const before = await counters(fence, tenant);
    const event = record({ model: `unpriced-${randomUUID().slice(0, 8)}` });
    expect(await write(event)).toMatchObject({ inserted: true, tokens: 1333 });
    expect(await write(event)).toMatchObject({ inserted: false });
    const rows = (await ledgerRows(fence, tenant)).filter((r) => r.eventId === event.eventId);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.duplicateCount).toBe(1);
    const after = await counters(fence, tenant);
    expect(after.day.tokens - before.day.tokens).toBe(1333);
    expect(after.month.tokens - before.month.tokens).toBe(1333);
  });

  it("meters an unpriced model at the internal rate, with no price version", async () => {
    const event = record({ model: `unpriced-${randomUUID().slice(0, 8)}`, inputTokens: 1000, outputTokens: 500 });
    await write(event);
    // (1000 + 500) tokens × 1000 micro / 1M tokens = 1.5 → rounded up to 2
    expect(await rowOf(event.eventId)).toMatchObject({ costMicros: 2, priceVersion: null, status: "charged" });
  });

  it("prices from the newest version in effect, rounds up, and records the version", async () => {
    await addPrice(1, 1500, 2500);
    const first = record();
    await write(first);
    // 1000 × 1500 + 333 × 2500 = 2,332,500 micro-micro → 2.3325 → 3
    expect(await rowOf(first.eventId)).toMatchObject({ costMicros: 3, priceVersion: 1 });

    await addPrice(2, 4_000_000, 1_000_000);
    await addPrice(3, 1, 1, new Date(Date.now() + 86_400_000)); // announced for tomorrow: not yet in effect
    const second = record();
    await write(second);
    // 1000 × 4 + 333 × 1 = 4333
    expect(await rowOf(second.eventId)).toMatchObject({ costMicros: 4333, priceVersion: 2 });
    expect(await rowOf(first.eventId)).toMatchObject({ costMicros: 3, priceVersion: 1 }); // history is not re-priced

    const failed = record({ status: "failed", inputTokens: 0, outputTokens: 0, error: "HTTP 500" });
    await write(failed);
    expect(await rowOf(failed.eventId)).toMatchObject({ costMicros: 0, status: "failed" });

    // Counters equal the ledger, cost included.
    const rows = (await ledgerRows(fence, tenant)).filter((r) => r.status === "charged");
    const { day } = await counters(fence, tenant);
    expect(day.costMicros).toBe(rows.reduce((s, r) => s + r.costMicros, 0));
    expect(day.tokens).toBe(rows.reduce((s, r) => s + r.inputTokens + r.outputTokens, 0));
  });

  it("charges what costMicros() computes, cached tokens included (the ledger's SQL and the reservation's arithmetic agree)", async () => {
    const cachedModel = `cached-${randomUUID().slice(0, 8)}`;
    const price = { inputMicrosPerMTok: 2_500_003, outputMicrosPerMTok: 10_000_007, cachedMicrosPerMTok: 1_250_001 };
    await fence.fence.db.asPlatformAdmin("test: add price", (tx) =>
      tx.insert(prices).values({ provider: PROVIDER, model: cachedModel, version: 1, effectiveFrom: new Date(Date.now() - 60_000), ...price }),
    );
    try {
      const usages = [
        { inputTokens: 1, outputTokens: 0, cachedTokens: 0 },
        { inputTokens: 999_999, outputTokens: 1, cachedTokens: 400_000 },
        { inputTokens: 120_000, outputTokens: 4_097, cachedTokens: 120_000 },
        { inputTokens: 10, outputTokens: 10, cachedTokens: 50 }, // more cached than input: billed input is 0, not negative
        { inputTokens: 7_654_321, outputTokens: 1_234_567, cachedTokens: 3 },
      ];
      for (const usage of usages) {
        const event = record({ model: cachedModel, ...usage });
        const written = await write(event);
        expect(written.costMicros).toBe(costMicros(price, usage));
        expect(await rowOf(event.eventId)).toMatchObject({ costMicros: costMicros(price, usage), priceVersion: 1 });
      }
    } finally {
      await fence.fence.db.asPlatformAdmin("test: remove prices", (tx) => tx.delete(prices).where(eq(prices.model, cachedModel)));
    }
  });

  it("meters a search's query embedding once, and a cached query not again", async () => {
    const searcher = await fence.createTenant();
    await fence.upload(searcher, { text: "The harbour ferry leaves every forty minutes in winter.", source_id: "ferry" });
    const search = async (query: string) => {
      const res = await fence.request("POST", "/v1/search", { key: searcher.key, json: { query, k: 3 } });
      expect(res.status).toBe(200);
    };
    const query = `how often does the ferry leave ${randomUUID()}`;
    const before = await counters(fence, searcher);
    await search(query);
    const charged = await ledgerRows(fence, searcher, "embed_query");
    expect(charged).toHaveLength(1);
    expect(charged[0]).toMatchObject({ status: "charged", inputTokens: estimateTokens(query), keyId: searcher.keyId });
    const after = await counters(fence, searcher);
    expect(after.day.tokens - before.day.tokens).toBe(estimateTokens(query));
    expect(after.month.tokens - before.month.tokens).toBe(estimateTokens(query));

    await search(query); // the tenant's cached query vector: no embedding, no charge
    expect(await ledgerRows(fence, searcher, "embed_query")).toHaveLength(1);
    expect((await counters(fence, searcher)).day.tokens).toBe(after.day.tokens);
  });

  it("lets no other tenant read or count a tenant's usage", async () => {
    await write(record());
    const other = await fence.createTenant();
    const otherCtx = await contextFor(fence, other);
    // No WHERE clause: only row-level security stands between B and A's rows. On Citus a tenant
    // transaction refuses a statement that spans shards; naming A's tenant instead sends it to A's
    // shard, where row-level security (B's tenant propagated to that worker) leaves nothing.
    const onCitus = fence.fence.db.distribution === "citus";
    const seenByOther = await fence.fence.db.withTenant(otherCtx, async (scope) => ({
      events: await scope.tx.select().from(usageEvents).where(onCitus ? eq(usageEvents.tenantId, tenant.id) : undefined),
      counters: await scope.tx.select().from(usageCounters).where(onCitus ? eq(usageCounters.tenantId, tenant.id) : undefined),
    }));
    expect(seenByOther).toEqual({ events: [], counters: [] });
    if (onCitus) {
      const spanning = fence.fence.db.withTenant(otherCtx, (scope) => scope.tx.select().from(usageEvents));
      expect((await postgresErrorOf(spanning)).message).toMatch(/multi-task query/);
    }
    const seenByOwner = await fence.fence.db.withTenant(ctx, (scope) => scope.tx.select().from(usageEvents).where(scope.owns(usageEvents.tenantId)));
    expect(seenByOwner.length).toBeGreaterThan(0);
    expect(seenByOwner.every((r) => r.tenantId === tenant.id)).toBe(true);

    // And through the API: B's usage report has none of A's rows.
    const res = await fence.request("GET", "/v1/usage?group_by=model", { key: other.key });
    expect(res.status).toBe(200);
    expect(JSON.stringify(await res.json())).not.toContain(model);
  });
});
