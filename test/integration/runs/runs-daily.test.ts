import { randomInt } from "node:crypto";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../../src/db/database.js";
import { percentileOfBuckets, rebuildRunsDaily, trimRunsDaily } from "../../../src/runs/run-daily.js";
import type { RunKind, RunStatus } from "../../../src/db/schema.js";
import type { TenantContext } from "../../../src/core/tenant-context.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { contextFor } from "../../support/isolation-helpers.js";

/**
 * The runs' daily rollup (runs/run-daily.ts), which the console's overview reads instead of every
 * run: RunStore.insert keeps it equal to a recount of the runs; the overview's summary counts
 * refusals and failures exactly and gives p50/p95 within 5 % of the exact percentiles, over a
 * window that starts mid-day too; and the retention sweep drops only days whose runs are all gone.
 */

const DAY = 24 * 60 * 60 * 1000;

describe.each(backends)("runs daily rollup on $name", (backend) => {
  let fence: TestFence;
  let a: TestTenant;
  let b: TestTenant;
  let aCtx: TenantContext;
  let bCtx: TenantContext;

  const insert = (ctx: TenantContext, run: { kind: RunKind; status: RunStatus; code?: string; latencyMs: number; startedAt: Date }) =>
    fence.fence.runs.store.insert(ctx, {
      requestId: `rollup-${randomInt(1e9)}`,
      kind: run.kind,
      status: run.status,
      errorCode: run.code ?? null,
      project: "default",
      environment: "prod",
      startedAt: run.startedAt,
      finishedAt: new Date(run.startedAt.getTime() + run.latencyMs),
      latencyMs: run.latencyMs,
    });

  const rollupOf = (tenantId: string) =>
    fence.fence.db.asPlatformAdmin("test: read runs rollup", (tx) =>
      queryRows<{ day: string; kind: string; status: string; error_code: string; latency_bucket: number; runs: string }>(
        tx,
        sql`SELECT day::text AS day, kind, status, error_code, latency_bucket, runs::text AS runs FROM runs_daily
            WHERE tenant_id = ${tenantId} ORDER BY 1, 2, 3, 4, 5`,
      ),
    );

  /** percentile_cont over the runs themselves: the exact figure the rollup approximates. */
  const exact = (tenantId: string, kind: RunKind, since: Date) =>
    fence.fence.db.asPlatformAdmin("test: exact percentiles", async (tx) => {
      const [row] = await queryRows<{ p50: number | null; p95: number | null; n: string }>(
        tx,
        sql`SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50, percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95,
              count(*)::text AS n
            FROM runs WHERE tenant_id = ${tenantId} AND kind = ${kind} AND status = 'succeeded' AND started_at >= ${since.toISOString()}::timestamptz`,
      );
      return { p50: Number(row!.p50), p95: Number(row!.p95), runs: Number(row!.n) };
    });

  beforeAll(async () => {
    fence = await TestFence.start(backend);
    a = await fence.createTenant();
    b = await fence.createTenant();
    aCtx = await contextFor(fence, a);
    bCtx = await contextFor(fence, b);
    const today = Math.floor(Date.now() / DAY) * DAY;
    // A's runs over the last 6 days: chat latencies spread over two orders of magnitude, a
    // slower ingest, refusals and failures with their codes.
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) {
      const startedAt = new Date(today - (i % 6) * DAY + randomInt(0, 20 * 3600_000));
      const r = i % 10;
      if (r < 6) writes.push(insert(aCtx, { kind: "chat", status: "succeeded", latencyMs: Math.round(20 + randomInt(0, 2000) * (i % 3 === 0 ? 1 : 0.1)), startedAt }));
      else if (r < 8) writes.push(insert(aCtx, { kind: "ingest", status: "succeeded", latencyMs: 500 + randomInt(0, 9000), startedAt }));
      else if (r === 8) writes.push(insert(aCtx, { kind: "chat", status: "refused", code: i % 20 === 8 ? "rate_limited" : "budget_exceeded", latencyMs: randomInt(0, 4), startedAt }));
      else writes.push(insert(aCtx, { kind: "ingest", status: "failed", code: "upstream_error", latencyMs: randomInt(10, 300), startedAt }));
      if (writes.length >= 8) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    for (let i = 0; i < 5; i++) await insert(bCtx, { kind: "chat", status: "refused", code: "rate_limited", latencyMs: 1, startedAt: new Date() });
  });
  afterAll(async () => {
    for (const t of [a, b]) if (t) await fence.admin("DELETE", `/tenants/${t.id}`);
    await fence?.close();
  });

  it("equals a recount of the runs, run by run as they were inserted (concurrently too)", async () => {
    const incremental = await rollupOf(a.id);
    await fence.fence.db.asPlatformAdmin("test: rebuild runs rollup", (tx) => rebuildRunsDaily(tx, a.id));
    expect(incremental).toEqual(await rollupOf(a.id));
    expect(incremental.reduce((n, r) => n + Number(r.runs), 0)).toBe(300);
    expect((await rollupOf(b.id)).reduce((n, r) => n + Number(r.runs), 0)).toBe(5);
  });

  it("summarises a window from mid-day: refusals exact, p50 and p95 within 5 % of the exact percentiles", async () => {
    const today = Math.floor(Date.now() / DAY) * DAY;
    for (const since of [new Date(today - 5 * DAY), new Date(today - 3 * DAY - 7 * 3600_000), new Date(today - 6 * DAY + 11 * 3600_000)]) {
      const summary = await fence.fence.runs.store.summary(aCtx, since);
      for (const kind of ["chat", "ingest"] as const) {
        const truth = await exact(a.id, kind, since);
        const got = summary.latency.find((l) => l.kind === kind)!;
        expect({ since, kind, runs: got.runs }).toEqual({ since, kind, runs: truth.runs });
        expect(Math.abs(got.p50Ms! - truth.p50), `${kind} p50 ${got.p50Ms} vs ${truth.p50}`).toBeLessThanOrEqual(truth.p50 * 0.05 + 0.5);
        expect(Math.abs(got.p95Ms! - truth.p95), `${kind} p95 ${got.p95Ms} vs ${truth.p95}`).toBeLessThanOrEqual(truth.p95 * 0.05 + 0.5);
      }
      const [row] = await fence.fence.db.asPlatformAdmin("test: count refusals", (tx) =>
        queryRows<{ refused: string; failed: string }>(
          tx,
          sql`SELECT count(*) FILTER (WHERE status = 'refused')::text AS refused, count(*) FILTER (WHERE status = 'failed')::text AS failed
              FROM runs WHERE tenant_id = ${a.id} AND started_at >= ${since.toISOString()}::timestamptz`,
        ),
      );
      const sum = (status: RunStatus) => summary.notSucceeded.filter((n) => n.status === status).reduce((n, r) => n + r.runs, 0);
      expect({ refused: sum("refused"), failed: sum("failed") }).toEqual({ refused: Number(row!.refused), failed: Number(row!.failed) });
      expect(summary.notSucceeded.map((n) => n.code).sort()).toEqual(expect.arrayContaining(["budget_exceeded", "upstream_error"]));
    }
    // B's refusals are B's alone.
    const bSummary = await fence.fence.runs.store.summary(bCtx, new Date(Date.now() - DAY));
    expect(bSummary.notSucceeded).toEqual([{ kind: "chat", status: "refused", code: "rate_limited", runs: 5 }]);
  });

  it("keeps a day's counts through the retention sweep until every run of that day has expired", async () => {
    const today = Math.floor(Date.now() / DAY) * DAY;
    const before = new Date(today - 3 * DAY + 5 * 3600_000); // runs of 3 days ago expire only partly
    await fence.fence.db.asPlatformAdmin("test: trim", (tx) => trimRunsDaily(tx, before, a.id));
    const days = [...new Set((await rollupOf(a.id)).map((r) => r.day))].sort();
    expect(days[0]).toBe(new Date(today - 3 * DAY).toISOString().slice(0, 10));
    expect(days).toHaveLength(4);
  });

  it("interpolates a percentile inside its bucket and is null without runs", () => {
    expect(percentileOfBuckets([], 0.5)).toBeNull();
    // One run in bucket 48 ([1.1^48 − 1, 1.1^49 − 1) ≈ [96.0, 106.0)): the middle of the bucket.
    const one = percentileOfBuckets([{ bucket: 48, runs: 1 }], 0.5)!;
    expect(one).toBeGreaterThan(1.1 ** 48 - 1);
    expect(one).toBeLessThan(1.1 ** 49 - 1);
    // 100 runs split 50/50 over two buckets: the median lies at the edge between them.
    const median = percentileOfBuckets([{ bucket: 10, runs: 50 }, { bucket: 20, runs: 50 }], 0.5)!;
    expect(median).toBeGreaterThan(1.1 ** 10 - 1);
    expect(median).toBeLessThan(1.1 ** 21 - 1);
  });
});
