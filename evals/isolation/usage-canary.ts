import { randomInt } from "node:crypto";
import { and, eq, gte, inArray, lt, sql } from "drizzle-orm";
import { usageCounters, usageEvents } from "../../src/db/schema.js";
import { rebuildUsageDaily } from "../../src/metering/usage-daily.js";
import type { FenceInstance } from "../../src/platform/fence.js";
import { periodsOf, recordUsage } from "../../src/metering/ledger.js";
import { authenticateTenantKey } from "../../src/tenancy/authenticate.js";
import type { Owner } from "./exchange.js";
import type { Needle } from "./leak-detector.js";
import type { SeededTenant } from "./seed.js";
import type { IssuedKeyJson } from "../../test/support/api-types.js";

/**
 * Usage canaries: one distinctive, charged usage event per tenant, written through the real
 * ledger in the tenant's own transaction. Its model and project names carry the run id, its
 * token counts are random 7-digit numbers, and it is dated a few days back (each tenant a
 * different day) — so whichever way B groups its usage (day, model, project, environment), A's
 * event would form a row of its own, and its names and numbers are needles the detector finds.
 * Groupings that would merge rows (feature, totals) are checked against ground truth instead.
 */
export interface UsageCanary {
  owner: Owner;
  model: string;
  project: string;
  key: string;
  keyId: string;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
}

export async function seedUsageCanary(
  url: string,
  adminKey: string,
  fence: FenceInstance,
  tenant: SeededTenant,
  runId: string,
  modeTag: string,
): Promise<UsageCanary> {
  const tag = `${tenant.owner.toLowerCase()}-${runId}-${modeTag}`;
  // Seven-digit canaries would exhaust the free plan's budgets and turn the owner's own chats
  // into 402s; the enterprise plan has room. Moved through the admin API, as an operator would.
  await adminCall(url, adminKey, "PATCH", `/v1/admin/tenants/${tenant.id}/config`, { plan: "enterprise" });
  const project = `canary-project-${tag}`;
  const issued = (await adminCall(url, adminKey, "POST", `/v1/admin/tenants/${tenant.id}/keys`, {
    name: "usage-canary",
    project,
    environment: "sandbox",
  })) as IssuedKeyJson;
  const canary: UsageCanary = {
    owner: tenant.owner,
    model: `canary-model-${tag}`,
    project,
    key: issued.key,
    keyId: issued.id,
    inputTokens: randomInt(2_000_000, 4_000_000),
    outputTokens: randomInt(1_000_000, 2_000_000),
    cachedTokens: randomInt(1_000_000, 2_000_000),
  };
  const eventId = `usage-canary-${tag}`;
  const ctx = await authenticateTenantKey(fence.db, issued.key, `eval-${eventId}`);
  await fence.db.withTenant(ctx, (scope) =>
    recordUsage(
      scope,
      {
        eventId,
        feature: "chat",
        provider: "eval",
        model: canary.model,
        inputTokens: canary.inputTokens,
        outputTokens: canary.outputTokens,
        cachedTokens: canary.cachedTokens,
        status: "charged",
      },
      0,
    ),
  );
  const daysBack = tenant.owner === "A" ? 3 : 5;
  const day = new Date(Date.now() - daysBack * 24 * 3600_000);
  day.setUTCHours(12, 0, 0, 0);
  await fence.db.asPlatformAdmin("isolation-eval-seed", async (tx) => {
    await tx
      .update(usageEvents)
      .set({ occurredAt: day })
      .where(and(eq(usageEvents.tenantId, tenant.id), eq(usageEvents.eventId, eventId)));
    // The reports read whole days from the daily rollup: it follows the event to its day.
    await rebuildUsageDaily(tx, tenant.id);
  });
  return canary;
}

/** What only the canary's owner may ever receive about it. */
export function usageNeedles(canary: UsageCanary): Needle[] {
  const { owner } = canary;
  const numbers = [canary.inputTokens, canary.outputTokens, canary.cachedTokens, canary.inputTokens + canary.outputTokens];
  return [
    { owner, kind: "usage", value: canary.model },
    { owner, kind: "usage", value: canary.project },
    { owner, kind: "api-key", value: canary.key },
    { owner, kind: "key-id", value: canary.keyId },
    ...numbers.map((n) => ({ owner, kind: "usage" as const, value: String(n) })),
  ];
}

export interface UsageTruth {
  totals: { events: number; input_tokens: number; output_tokens: number; cached_tokens: number; cost_micros: number };
  /** The budget counters of the current UTC day and month. */
  counters: { dayTokens: number; monthTokens: number; monthCostMicros: number };
}

/** Ground truth, read as the platform: the tenant's charged usage in [from, to) and its counters now. */
export async function usageTruthOf(fence: FenceInstance, tenantId: string, from: string, to: string): Promise<UsageTruth> {
  return fence.db.asPlatformAdmin("isolation-eval-ground-truth", async (tx) => {
    const e = usageEvents;
    const [totals] = await tx
      .select({
        events: sql<string>`count(*)::text`,
        input: sql<string>`coalesce(sum(${e.inputTokens}), 0)::text`,
        output: sql<string>`coalesce(sum(${e.outputTokens}), 0)::text`,
        cached: sql<string>`coalesce(sum(${e.cachedTokens}), 0)::text`,
        cost: sql<string>`coalesce(sum(${e.costMicros}), 0)::text`,
      })
      .from(e)
      .where(and(eq(e.tenantId, tenantId), eq(e.status, "charged"), gte(e.occurredAt, new Date(from)), lt(e.occurredAt, new Date(to))));
    const { day, month } = periodsOf(new Date());
    const counters = await tx
      .select()
      .from(usageCounters)
      .where(and(eq(usageCounters.tenantId, tenantId), inArray(usageCounters.period, [day, month])));
    const dayRow = counters.find((c) => c.period === day);
    const monthRow = counters.find((c) => c.period === month);
    return {
      totals: {
        events: Number(totals?.events ?? 0),
        input_tokens: Number(totals?.input ?? 0),
        output_tokens: Number(totals?.output ?? 0),
        cached_tokens: Number(totals?.cached ?? 0),
        cost_micros: Number(totals?.cost ?? 0),
      },
      counters: { dayTokens: dayRow?.tokens ?? 0, monthTokens: monthRow?.tokens ?? 0, monthCostMicros: monthRow?.costMicros ?? 0 },
    };
  });
}

/** A setup call (not an attack): not recorded, and any failure aborts the mode. */
async function adminCall(url: string, adminKey: string, method: string, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`setup ${method} ${path}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}
