import { and, desc, eq, gt, gte, isNotNull, isNull, lt, sql, type SQL } from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import { queryRows, type Tx } from "../db/database.js";
import { usageDaily, usageEvents } from "../db/schema.js";
import { splitIntoWholeDays } from "./usage-daily.js";
import { resolveUsageRange, type UsageRange } from "./usage-range.js";

/**
 * What the ledger did besides charging, for an operator reconciling it against provider
 * invoices: calls that failed with no provider charge, replays it refused to count twice, retries
 * and the originals they point at, and charged usage metered at the internal rate because the
 * model had no price row. Runs as the platform (`asPlatformAdmin`); lists are capped, the
 * summary counts are not.
 */
export const RECONCILIATION_LIST_LIMIT = 1000;

export interface ReconciliationSummary {
  failed_events: number;
  duplicated_events: number;
  /** Writes of an already-recorded event id that were not counted again. */
  duplicates_prevented: number;
  retries: number;
  internal_rate_events: number;
}

export interface ReconciliationReport {
  from: string;
  to: string;
  summary: ReconciliationSummary;
  failed: { tenant_id: string; feature: string; model: string; events: number; input_tokens: number; last_error: string | null; last_occurred_at: string }[];
  duplicates: { tenant_id: string; event_id: string; request_id: string; feature: string; model: string; status: string; duplicate_count: number; occurred_at: string }[];
  retries: { tenant_id: string; event_id: string; retry_of: string; status: string; original_status: string | null; feature: string; model: string; occurred_at: string }[];
  internal_rate: { tenant_id: string; provider: string; model: string; events: number; total_tokens: number; cost_micros: number }[];
}

export async function reconciliation(tx: Tx, query: { from?: string | undefined; to?: string | undefined }): Promise<ReconciliationReport> {
  const range = resolveUsageRange(query);
  const e = usageEvents;
  const inRange = and(gte(e.occurredAt, range.from), lt(e.occurredAt, range.to));

  const summary = await reconciliationSummary(tx, range);

  const failed = await tx
    .select({
      tenantId: e.tenantId,
      feature: e.feature,
      model: e.model,
      events: sql<string>`count(*)::text`,
      input: sql<string>`coalesce(sum(${e.inputTokens}), 0)::text`,
      lastError: sql<string | null>`(array_agg(${e.error} order by ${e.occurredAt} desc))[1]`,
      last: sql<string>`max(${e.occurredAt})`.mapWith(e.occurredAt),
    })
    .from(e)
    .where(and(inRange, eq(e.status, "failed")))
    .groupBy(e.tenantId, e.feature, e.model)
    .orderBy(e.tenantId, e.feature, e.model)
    .limit(RECONCILIATION_LIST_LIMIT);

  const duplicates = await tx
    .select()
    .from(e)
    .where(and(inRange, gt(e.duplicateCount, 0)))
    .orderBy(desc(e.occurredAt), e.eventId)
    .limit(RECONCILIATION_LIST_LIMIT);

  const original = alias(usageEvents, "original");
  const retries = await tx
    .select({ retry: e, originalStatus: original.status })
    .from(e)
    .leftJoin(original, and(eq(original.tenantId, e.tenantId), eq(original.eventId, e.retryOf)))
    .where(and(inRange, isNotNull(e.retryOf)))
    .orderBy(desc(e.occurredAt), e.eventId)
    .limit(RECONCILIATION_LIST_LIMIT);

  const internal = await tx
    .select({
      tenantId: e.tenantId,
      provider: e.provider,
      model: e.model,
      events: sql<string>`count(*)::text`,
      tokens: sql<string>`coalesce(sum(${e.inputTokens} + ${e.outputTokens}), 0)::text`,
      cost: sql<string>`coalesce(sum(${e.costMicros}), 0)::text`,
    })
    .from(e)
    .where(and(inRange, eq(e.status, "charged"), isNull(e.priceVersion)))
    .groupBy(e.tenantId, e.provider, e.model)
    .orderBy(e.tenantId, e.provider, e.model)
    .limit(RECONCILIATION_LIST_LIMIT);

  return {
    from: range.from.toISOString(),
    to: range.to.toISOString(),
    summary,
    failed: failed.map((r) => ({
      tenant_id: r.tenantId,
      feature: r.feature,
      model: r.model,
      events: Number(r.events),
      input_tokens: Number(r.input),
      last_error: r.lastError,
      last_occurred_at: toIso(r.last),
    })),
    duplicates: duplicates.map((r) => ({
      tenant_id: r.tenantId,
      event_id: r.eventId,
      request_id: r.requestId,
      feature: r.feature,
      model: r.model,
      status: r.status,
      duplicate_count: r.duplicateCount,
      occurred_at: r.occurredAt.toISOString(),
    })),
    retries: retries.map(({ retry, originalStatus }) => ({
      tenant_id: retry.tenantId,
      event_id: retry.eventId,
      retry_of: retry.retryOf!,
      status: retry.status,
      original_status: originalStatus,
      feature: retry.feature,
      model: retry.model,
      occurred_at: retry.occurredAt.toISOString(),
    })),
    internal_rate: internal.map((r) => ({
      tenant_id: r.tenantId,
      provider: r.provider,
      model: r.model,
      events: Number(r.events),
      total_tokens: Number(r.tokens),
      cost_micros: Number(r.cost),
    })),
  };
}

/**
 * The reconciliation's counts over every tenant: whole UTC days from the daily rollup, which
 * recordUsage keeps with the same counts (usage-daily.ts), the partial days at the window's edges
 * from the events — the same numbers as counting every event, without reading a month of them.
 */
export async function reconciliationSummary(tx: Tx, range: UsageRange): Promise<ReconciliationSummary> {
  const e = usageEvents;
  const d = usageDaily;
  const { days, edges } = splitIntoWholeDays(range.from, range.to);
  const count = (condition: SQL) => sql`count(*) FILTER (WHERE ${condition})`;
  const parts: SQL[] = edges.map(
    ([from, to]) =>
      sql`SELECT ${count(sql`${e.status} = 'failed'`)} AS failed, ${count(sql`${e.duplicateCount} > 0`)} AS duplicated,
            coalesce(sum(${e.duplicateCount}), 0) AS prevented, ${count(sql`${e.retryOf} IS NOT NULL`)} AS retries,
            ${count(sql`${e.status} = 'charged' AND ${e.priceVersion} IS NULL`)} AS internal
          FROM ${e} WHERE ${and(gte(e.occurredAt, from), lt(e.occurredAt, to))}`,
  );
  if (days) {
    parts.push(
      sql`SELECT sum(${d.failedEvents}) AS failed, sum(${d.duplicatedEvents}) AS duplicated, sum(${d.duplicatesPrevented}) AS prevented,
            sum(${d.retries}) AS retries, sum(${d.internalRateEvents}) AS internal
          FROM ${d} WHERE ${and(gte(d.day, days.from), lt(d.day, days.to))}`,
    );
  }
  // Sums of bigint are numeric: read as text so neither driver rounds or returns a BigInt.
  const [row] = await queryRows<Record<"failed" | "duplicated" | "prevented" | "retries" | "internal", string | null>>(
    tx,
    sql`SELECT sum(failed)::text AS failed, sum(duplicated)::text AS duplicated, sum(prevented)::text AS prevented,
          sum(retries)::text AS retries, sum(internal)::text AS internal
        FROM (${sql.join(parts, sql` UNION ALL `)}) AS parts`,
  );
  return {
    failed_events: Number(row?.failed ?? 0),
    duplicated_events: Number(row?.duplicated ?? 0),
    duplicates_prevented: Number(row?.prevented ?? 0),
    retries: Number(row?.retries ?? 0),
    internal_rate_events: Number(row?.internal ?? 0),
  };
}

function toIso(value: unknown): string {
  return value instanceof Date ? value.toISOString() : new Date(String(value)).toISOString();
}
