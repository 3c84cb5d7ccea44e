import { and, count, eq, sql } from "drizzle-orm";
import { queryRows } from "../../src/db/database.js";
import { budgetReservations, plans, tenantConfigs, tenants, usageCounters, usageEvents, type UsageEventRow } from "../../src/db/schema.js";
import type { TestFence, TestTenant } from "./harness.js";

/**
 * Helpers for the metering and budget suites. Plans, overrides and prices are written directly as
 * platform admin (the admin API for them is built elsewhere); ledger, counters and reservations
 * are read the same way, so the tests see what is stored, not what an endpoint chooses to show.
 */
export type PlanValues = Partial<typeof plans.$inferInsert>;

/**
 * Creates (or replaces) plan `name` — unlimited unless given — and moves the tenant onto it. Like
 * the admin API, it drops this instance's verified copies at once; the database also announces
 * the change to every instance (drizzle/0011), which on Postgres arrives a moment later.
 */
export async function putTenantOnPlan(fence: TestFence, tenant: TestTenant, name: string, values: PlanValues): Promise<void> {
  const row = {
    tokensPerDay: null,
    tokensPerMonth: null,
    spendPerMonthMicros: null,
    preferredModel: null,
    fallbackModel: null,
    downgradeAllowed: false,
    downgradeThreshold: 0.9,
    ...values,
  };
  await fence.fence.db.asPlatformAdmin("test: set plan", async (tx) => {
    await tx.insert(plans).values({ name, ...row }).onConflictDoUpdate({ target: plans.name, set: row });
    await tx.update(tenants).set({ plan: name }).where(eq(tenants.id, tenant.id));
  });
  fence.fence.tenantAuthGuards.cache?.forget(`plan:${name}`);
  fence.fence.tenantAuthGuards.cache?.forget(`tenant:${tenant.id}`);
}

export async function setTenantOverrides(fence: TestFence, tenant: TestTenant, overrides: Record<string, unknown>): Promise<void> {
  await fence.fence.db.asPlatformAdmin("test: set overrides", (tx) =>
    tx
      .insert(tenantConfigs)
      .values({ tenantId: tenant.id, overrides })
      .onConflictDoUpdate({ target: tenantConfigs.tenantId, set: { overrides } }),
  );
}

export function ledgerRows(fence: TestFence, tenant: TestTenant, feature?: string): Promise<UsageEventRow[]> {
  return fence.fence.db.asPlatformAdmin("test: read ledger", (tx) =>
    tx
      .select()
      .from(usageEvents)
      .where(and(eq(usageEvents.tenantId, tenant.id), feature ? eq(usageEvents.feature, feature) : undefined))
      .orderBy(usageEvents.occurredAt),
  );
}

/** Today's and this month's counters of the tenant. */
export async function counters(fence: TestFence, tenant: TestTenant): Promise<{ day: { tokens: number; costMicros: number }; month: { tokens: number; costMicros: number } }> {
  const rows = await fence.fence.db.asPlatformAdmin("test: read counters", (tx) =>
    tx.select().from(usageCounters).where(eq(usageCounters.tenantId, tenant.id)),
  );
  const pick = (prefix: string) => {
    const row = rows.find((r) => r.period.startsWith(prefix));
    return { tokens: row?.tokens ?? 0, costMicros: row?.costMicros ?? 0 };
  };
  return { day: pick("day:"), month: pick("month:") };
}

export async function reservationCount(fence: TestFence, tenant: TestTenant): Promise<number> {
  const [row] = await fence.fence.db.asPlatformAdmin("test: count reservations", (tx) =>
    tx.select({ n: count() }).from(budgetReservations).where(eq(budgetReservations.tenantId, tenant.id)),
  );
  return Number(row?.n ?? 0);
}

export async function reservationTokens(fence: TestFence, tenant: TestTenant): Promise<number[]> {
  const rows = await fence.fence.db.asPlatformAdmin("test: read reservations", (tx) =>
    tx.select({ tokens: budgetReservations.tokens }).from(budgetReservations).where(eq(budgetReservations.tenantId, tenant.id)),
  );
  return rows.map((r) => r.tokens);
}

/** Charged tokens and cost in the ledger (what the counters must equal). */
export function chargedTotals(rows: readonly UsageEventRow[]): { input: number; output: number; tokens: number; costMicros: number } {
  const charged = rows.filter((r) => r.status === "charged");
  const input = charged.reduce((s, r) => s + r.inputTokens, 0);
  const output = charged.reduce((s, r) => s + r.outputTokens, 0);
  return { input, output, tokens: input + output, costMicros: charged.reduce((s, r) => s + r.costMicros, 0) };
}

/** Polls until `check` returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 2000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function documentAndChunkCounts(fence: TestFence, tenant: TestTenant): Promise<{ documents: number; chunks: number }> {
  return fence.fence.db.asPlatformAdmin("test: count documents", async (tx) => {
    const [d] = await queryRows<{ n: string }>(tx, sql`SELECT count(*)::text AS n FROM documents WHERE tenant_id = ${tenant.id}`);
    const [c] = await queryRows<{ n: string }>(tx, sql`SELECT count(*)::text AS n FROM chunks WHERE tenant_id = ${tenant.id}`);
    return { documents: Number(d?.n ?? 0), chunks: Number(c?.n ?? 0) };
  });
}

/** Server-Sent Events as (event, data) pairs, in order. */
export function parseSse(body: string): { event: string; data: unknown }[] {
  return body
    .split(/\n\n+/)
    .filter((block) => block.trim())
    .map((block) => {
      const lines = block.split("\n");
      const event = lines.find((l) => l.startsWith("event:"))?.slice(6).trim() ?? "message";
      const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      return { event, data: JSON.parse(data) as unknown };
    });
}
