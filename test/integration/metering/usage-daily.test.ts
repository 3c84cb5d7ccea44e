import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../../src/db/database.js";
import { recordUsage } from "../../../src/metering/ledger.js";
import { rebuildUsageDaily, splitIntoWholeDays } from "../../../src/metering/usage-daily.js";
import { reconciliationSummary } from "../../../src/metering/reconciliation.js";
import { usageForTenant, type UsageRow } from "../../../src/metering/usage-report.js";
import type { UsageRecord } from "../../../src/metering/usage-event.js";
import type { TenantContext } from "../../../src/core/tenant-context.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { contextFor } from "../../support/isolation-helpers.js";
import type { IssuedKeyJson } from "../../support/api-types.js";

/**
 * The daily usage rollup the reports read (metering/usage-daily.ts): kept by recordUsage in the
 * statement that writes each event, it must always equal the ledger's own sums — replays, failures,
 * concurrent writers and zero-cost events included — and a report over any window (whole days from
 * the rollup, partial edge days from the events) must give what summing every event gives.
 */

const DAY = 24 * 60 * 60 * 1000;
/**
 * The midnight the spread events end on: a random day in 2040–2069, a period no other suite writes
 * into, since the reconciliation's counts cover every tenant sharing the database.
 */
const LAST_DAY = Date.UTC(2040 + Math.floor(Math.random() * 30), Math.floor(Math.random() * 12), 1 + Math.floor(Math.random() * 27));

interface RollupRow {
  day: string;
  model: string;
  project: string;
  environment: string;
  feature: string;
  key_id: string;
  events: string;
  input: string;
  output: string;
  cached: string;
  cost: string;
  failed: string;
  duplicated: string;
  prevented: string;
  retries: string;
  internal: string;
}

describe.each(backends)("daily usage rollup on $name", (backend) => {
  let fence: TestFence;
  let a: TestTenant;
  let b: TestTenant;
  let aCtx: TenantContext;
  let aOtherKeyCtx: TenantContext;
  let bCtx: TenantContext;
  const model = `rollup-${randomUUID().slice(0, 8)}`;

  const record = (overrides: Partial<UsageRecord> = {}): UsageRecord => ({
    eventId: `evt:${randomUUID()}`,
    feature: "chat",
    provider: "rollup-test",
    model,
    inputTokens: 120,
    outputTokens: 30,
    cachedTokens: 20,
    status: "charged",
    ...overrides,
  });
  const write = (ctx: TenantContext, r: UsageRecord) => fence.fence.db.withTenant(ctx, (scope) => recordUsage(scope, r, 1000));

  const rollupOf = (tenantId: string) =>
    fence.fence.db.asPlatformAdmin("test: read rollup", (tx) =>
      queryRows<RollupRow>(
        tx,
        sql`SELECT day::text AS day, model, project, environment, feature, key_id::text AS key_id, events::text AS events,
              input_tokens::text AS input, output_tokens::text AS output, cached_tokens::text AS cached, cost_micros::text AS cost,
              failed_events::text AS failed, duplicated_events::text AS duplicated, duplicates_prevented::text AS prevented,
              retries::text AS retries, internal_rate_events::text AS internal
            FROM usage_daily WHERE tenant_id = ${tenantId} ORDER BY 1, 2, 3, 4, 5, 6`,
      ),
    );

  /** The report as the ledger alone gives it: every charged event in [from, to), summed here. */
  const fromEvents = (tenantId: string, groupBy: "day" | "model" | "key" | "feature", from: Date, to: Date) =>
    fence.fence.db.asPlatformAdmin("test: sum events", async (tx) => {
      const key = {
        day: sql`to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
        model: sql`model`,
        key: sql`coalesce(key_id::text, 'none')`,
        feature: sql`feature`,
      }[groupBy];
      const rows = await queryRows<{ key: string; events: string; input: string; output: string; cached: string; cost: string }>(
        tx,
        sql`SELECT ${key} AS key, count(*)::text AS events, sum(input_tokens)::text AS input, sum(output_tokens)::text AS output,
              sum(cached_tokens)::text AS cached, sum(cost_micros)::text AS cost
            FROM usage_events
            WHERE tenant_id = ${tenantId} AND status = 'charged' AND occurred_at >= ${from.toISOString()}::timestamptz
              AND occurred_at < ${to.toISOString()}::timestamptz
            GROUP BY 1 ORDER BY 1`,
      );
      return rows.map(
        (r): UsageRow => ({
          key: r.key,
          events: Number(r.events),
          input_tokens: Number(r.input),
          output_tokens: Number(r.output),
          cached_tokens: Number(r.cached),
          total_tokens: Number(r.input) + Number(r.output),
          cost_micros: Number(r.cost),
        }),
      );
    });

  /** Moves events to other days and times, as a correction by hand would, then rebuilds the rollup. */
  const spreadOverDays = (tenantId: string) =>
    fence.fence.db.asPlatformAdmin("test: spread events", async (tx) => {
      // Deterministic per event: 0-5 days before LAST_DAY, any hour and minute. In epoch seconds:
      // Citus refuses a STABLE function (timestamptz arithmetic) in an UPDATE that also reads columns.
      const midnight = LAST_DAY / 1000;
      await tx.execute(sql`UPDATE usage_events
        SET occurred_at = to_timestamp(${midnight}::bigint - (abs(hashtext(event_id)) % 6) * 86400 + (abs(hashtext(event_id || 'h')) % 1440) * 60)
        WHERE tenant_id = ${tenantId}`);
      await rebuildUsageDaily(tx, tenantId);
    });

  beforeAll(async () => {
    fence = await TestFence.start(backend);
    a = await fence.createTenant();
    b = await fence.createTenant();
    aCtx = await contextFor(fence, a);
    const other = (await (await fence.admin("POST", `/tenants/${a.id}/keys`, { name: "second" })).json()) as IssuedKeyJson;
    aOtherKeyCtx = await contextFor(fence, { ...a, key: other.key });
    bCtx = await contextFor(fence, b);
  });
  afterAll(async () => {
    for (const t of [a, b]) if (t) await fence.admin("DELETE", `/tenants/${t.id}`);
    await fence?.close();
  });

  it("equals the ledger's own sums after replays, failures, zero-cost events and concurrent writers", async () => {
    const replayed = record({ feature: "embed_query", inputTokens: 7, outputTokens: 0, cachedTokens: 0 });
    await write(aCtx, replayed);
    await write(aCtx, replayed);
    const failed = record({ status: "failed", error: "provider answered 500" });
    await write(aCtx, failed);
    await write(aCtx, record({ retryOf: failed.eventId }));
    await write(aCtx, replayed); // a third write: two refused replays of one event
    await write(aCtx, record({ inputTokens: 0, outputTokens: 0, cachedTokens: 0 }));
    await write(aOtherKeyCtx, record({ model: `${model}-b` }));
    // Eight writers at once on the same rollup row: the upsert must add every one.
    await Promise.all(Array.from({ length: 8 }, () => write(aCtx, record())));
    await Promise.all(Array.from({ length: 3 }, () => write(bCtx, record())));

    const incremental = await rollupOf(a.id);
    await fence.fence.db.asPlatformAdmin("test: rebuild", (tx) => rebuildUsageDaily(tx, a.id));
    expect(incremental).toEqual(await rollupOf(a.id));
    const chat = incremental.find((r) => r.feature === "chat" && r.model === model && r.key_id === a.keyId)!;
    // 8 concurrent + 1 zero-token event + the retry; the failed one is not charged; the replay counts once.
    expect(chat).toMatchObject({ events: "10", input: String(9 * 120), output: String(9 * 30), cached: String(9 * 20), failed: "1", retries: "1" });
    // Every model here is unpriced: each charged event is internal-rate usage.
    expect(chat.internal).toBe("10");
    expect(incremental.find((r) => r.feature === "embed_query")).toMatchObject({ events: "1", input: "7", duplicated: "1", prevented: "2" });
    expect(incremental.map((r) => r.key_id)).toContain(aOtherKeyCtx.keyId);
    // B's writes are B's rows only.
    expect((await rollupOf(b.id)).map((r) => Number(r.events)).reduce((x, y) => x + y, 0)).toBe(3);
  });

  it("reports any window as summing every event does: whole days from the rollup, partial days from the ledger", async () => {
    for (let i = 0; i < 40; i++) {
      const event = record({ feature: i % 2 ? "chat" : "embed_query", model: `${model}-${i % 4}`, inputTokens: 10 + i, status: i % 7 === 0 ? "failed" : "charged" });
      await write(i % 3 === 0 ? aOtherKeyCtx : aCtx, event);
      if (i % 5 === 0) await write(aCtx, event); // a refused replay
    }
    await spreadOverDays(a.id);
    const today = LAST_DAY;
    const windows: [Date, Date][] = [
      [new Date(today - 5 * DAY), new Date(today + DAY)], // whole days only
      [new Date(today - 5 * DAY + 7 * 3600_000), new Date(today - DAY + 13 * 3600_000)], // partial days at both edges
      [new Date(today - 3 * DAY + 3600_000), new Date(today - 3 * DAY + 20 * 3600_000)], // inside one day
      [new Date(today - 4 * DAY + 23 * 3600_000), new Date(today - 3 * DAY + 3600_000)], // across one midnight
      [new Date(today - 6 * DAY), new Date(today + 15 * 3600_000 + 1234)], // the API's default shape: up to an instant today
    ];
    for (const [from, to] of windows) {
      expect(splitIntoWholeDays(from, to).edges.every(([f, t]) => f < t)).toBe(true);
      for (const groupBy of ["day", "model", "key", "feature"] as const) {
        const report = await fence.fence.db.withTenant(aCtx, (scope) =>
          usageForTenant(scope, { from: from.toISOString(), to: to.toISOString(), groupBy }),
        );
        expect({ window: [from, to], groupBy, rows: report.rows }).toEqual({ window: [from, to], groupBy, rows: await fromEvents(a.id, groupBy, from, to) });
      }
    }
    // The reconciliation's counts the same way: every tenant's, rollup days plus edge events.
    for (const [from, to] of windows) {
      const got = await fence.fence.db.asPlatformAdmin("test: reconcile", (tx) => reconciliationSummary(tx, { from, to }));
      const [truth] = await fence.fence.db.asPlatformAdmin("test: count events", (tx) =>
        queryRows<Record<string, string>>(
          tx,
          sql`SELECT count(*) FILTER (WHERE status = 'failed')::text AS failed_events, count(*) FILTER (WHERE duplicate_count > 0)::text AS duplicated_events,
                coalesce(sum(duplicate_count), 0)::text AS duplicates_prevented, count(*) FILTER (WHERE retry_of IS NOT NULL)::text AS retries,
                count(*) FILTER (WHERE status = 'charged' AND price_version IS NULL)::text AS internal_rate_events
              FROM usage_events WHERE occurred_at >= ${from.toISOString()}::timestamptz AND occurred_at < ${to.toISOString()}::timestamptz`,
        ),
      );
      expect({ window: [from, to], ...got }).toEqual({ window: [from, to], ...Object.fromEntries(Object.entries(truth!).map(([k, v]) => [k, Number(v)])) });
    }
    const whole = await fence.fence.db.withTenant(aCtx, (scope) =>
      usageForTenant(scope, { from: new Date(LAST_DAY - 5 * DAY).toISOString(), to: new Date(LAST_DAY + DAY).toISOString(), groupBy: "day" }),
    );
    expect(whole.rows.length).toBeGreaterThan(1); // the events did land on several days
  });

  it("splits a window into whole UTC days and its partial edges", () => {
    const d = Date.UTC(2026, 10, 3);
    expect(splitIntoWholeDays(new Date(d), new Date(d + 2 * DAY))).toEqual({ days: { from: "2026-11-03", to: "2026-11-05" }, edges: [] });
    expect(splitIntoWholeDays(new Date(d - 1), new Date(d + DAY + 1))).toEqual({
      days: { from: "2026-11-03", to: "2026-11-04" },
      edges: [
        [new Date(d - 1), new Date(d)],
        [new Date(d + DAY), new Date(d + DAY + 1)],
      ],
    });
    expect(splitIntoWholeDays(new Date(d + 1), new Date(d + DAY + 1))).toEqual({ edges: [[new Date(d + 1), new Date(d + DAY + 1)]] });
  });
});
