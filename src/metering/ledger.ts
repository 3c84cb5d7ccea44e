import { sql } from "drizzle-orm";
import { queryRows, type TenantScope } from "../db/database.js";
import { NO_KEY_ID, prices, usageCounters, usageDaily, usageEvents } from "../db/schema.js";
import type { UsageRecord } from "./usage-event.js";

/** UTC periods the budgets are counted in; both reset at midnight UTC. */
export function periodsOf(at: Date): { day: string; month: string } {
  const iso = at.toISOString();
  return { day: `day:${iso.slice(0, 10)}`, month: `month:${iso.slice(0, 7)}` };
}

/** The period a key's own monthly caps are counted in (the tenant's month, per key). */
export function keyMonthOf(keyId: string, at: Date): string {
  return `key:${keyId}:${periodsOf(at).month}`;
}

/**
 * Writes one usage event, idempotently: the event id is unique per tenant, and a second write of
 * the same id only increments `duplicate_count` (kept for the reconciliation report). Counters
 * move only when the event is new and charged, in the same statement, so they always equal the
 * sum of the ledger — the tenant's day and month, and the month of the key the work is charged to.
 * The daily rollup the reports read (usage-daily.ts) moves on every write, on the event's own day:
 * a new event's sums and counts, or a refused replay's count.
 *
 * One statement, not a price read, an insert and two counter upserts: every request that embeds a
 * query records its usage, and each round trip is one more wait on a busy event loop and database.
 * The price is the one costMicros() applies (pricing.ts), computed exactly in numeric.
 */
export async function recordUsage(
  scope: TenantScope,
  record: UsageRecord,
  internalRate: number,
): Promise<{ inserted: boolean; tokens: number; costMicros: number }> {
  const charged = record.status === "charged";
  const tokens = charged ? record.inputTokens + record.outputTokens : 0;
  const cached = record.cachedTokens ?? 0;
  const ctx = scope.ctx;
  const now = new Date();
  const { day, month } = periodsOf(now);
  const keyMonth = keyMonthOf(ctx.keyId, now);
  const [row] = await queryRows<{ inserted: boolean; cost_micros: string | number }>(
    scope.tx,
    sql`WITH price AS (
          SELECT ${prices.version} AS version, ${prices.inputMicrosPerMTok} AS input_rate,
                 ${prices.outputMicrosPerMTok} AS output_rate, ${prices.cachedMicrosPerMTok} AS cached_rate
          FROM ${prices}
          WHERE ${prices.provider} = ${record.provider} AND ${prices.model} = ${record.model} AND ${prices.effectiveFrom} <= now()
          ORDER BY ${prices.version} DESC LIMIT 1
        ), rate AS (
          SELECT (SELECT version FROM price) AS version,
                 COALESCE((SELECT input_rate FROM price), ${internalRate}::bigint) AS input_rate,
                 COALESCE((SELECT output_rate FROM price), ${internalRate}::bigint) AS output_rate,
                 COALESCE((SELECT cached_rate FROM price), 0::bigint) AS cached_rate
        ), event AS (
          INSERT INTO ${usageEvents} (tenant_id, event_id, project, environment, key_id, request_id, feature, provider,
            model, input_tokens, output_tokens, cached_tokens, cost_micros, price_version, status, usage_estimated,
            retry_of, error)
          SELECT ${ctx.tenantId}, ${record.eventId}, ${ctx.project}, ${ctx.environment}, ${ctx.keyId}, ${ctx.requestId},
            ${record.feature}, ${record.provider}, ${record.model}, ${record.inputTokens}, ${record.outputTokens}, ${cached},
            CASE WHEN ${charged}::boolean THEN ceil((
              greatest(0, ${record.inputTokens}::bigint - ${cached}::bigint)::numeric * rate.input_rate
              + ${cached}::numeric * rate.cached_rate + ${record.outputTokens}::numeric * rate.output_rate) / 1000000)::bigint
            ELSE 0 END,
            rate.version, ${record.status}, ${record.usageEstimated ?? false}, ${record.retryOf ?? null}, ${record.error ?? null}
          FROM rate
          ON CONFLICT (tenant_id, event_id) DO UPDATE SET duplicate_count = ${usageEvents.duplicateCount} + 1
          RETURNING (xmax = 0) AS inserted, cost_micros, status, duplicate_count, retry_of, price_version, occurred_at,
            model, project, environment, feature, key_id, input_tokens, output_tokens, cached_tokens
        ), counters AS (
          INSERT INTO ${usageCounters} (tenant_id, period, tokens, cost_micros)
          SELECT ${ctx.tenantId}, period, ${tokens}::bigint, event.cost_micros
          FROM event, (VALUES (${day}::text), (${month}::text), (${keyMonth}::text)) AS periods (period)
          WHERE event.inserted AND ${charged}::boolean AND (${tokens}::bigint > 0 OR event.cost_micros > 0)
          ON CONFLICT (tenant_id, period) DO UPDATE
            SET tokens = ${usageCounters.tokens} + excluded.tokens, cost_micros = ${usageCounters.costMicros} + excluded.cost_micros
        ), daily AS (
          INSERT INTO ${usageDaily} (tenant_id, day, model, project, environment, feature, key_id, events, input_tokens,
            output_tokens, cached_tokens, cost_micros, failed_events, duplicated_events, duplicates_prevented, retries,
            internal_rate_events)
          SELECT ${ctx.tenantId}, (occurred_at AT TIME ZONE 'UTC')::date, model, project, environment, feature,
            coalesce(key_id, ${NO_KEY_ID}::uuid), charged::int, CASE WHEN charged THEN input_tokens ELSE 0 END,
            CASE WHEN charged THEN output_tokens ELSE 0 END, CASE WHEN charged THEN cached_tokens ELSE 0 END,
            CASE WHEN charged THEN cost_micros ELSE 0 END, (inserted AND status = 'failed')::int,
            (NOT inserted AND duplicate_count = 1)::int, (NOT inserted)::int, (inserted AND retry_of IS NOT NULL)::int,
            (charged AND price_version IS NULL)::int
          FROM (SELECT *, inserted AND status = 'charged' AS charged FROM event) AS e
          ON CONFLICT (tenant_id, day, model, project, environment, feature, key_id) DO UPDATE
            SET events = ${usageDaily.events} + excluded.events, input_tokens = ${usageDaily.inputTokens} + excluded.input_tokens,
                output_tokens = ${usageDaily.outputTokens} + excluded.output_tokens,
                cached_tokens = ${usageDaily.cachedTokens} + excluded.cached_tokens,
                cost_micros = ${usageDaily.costMicros} + excluded.cost_micros,
                failed_events = ${usageDaily.failedEvents} + excluded.failed_events,
                duplicated_events = ${usageDaily.duplicatedEvents} + excluded.duplicated_events,
                duplicates_prevented = ${usageDaily.duplicatesPrevented} + excluded.duplicates_prevented,
                retries = ${usageDaily.retries} + excluded.retries,
                internal_rate_events = ${usageDaily.internalRateEvents} + excluded.internal_rate_events
        )
        SELECT inserted, cost_micros FROM event`,
  );
  const inserted = row?.inserted === true;
  return { inserted, tokens, costMicros: inserted && charged ? Number(row!.cost_micros) : 0 };
}
