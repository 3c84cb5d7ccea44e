import { sql } from "drizzle-orm";
import { queryRows, type TenantScope } from "../db/database.js";
import { usageCounters, usageEvents } from "../db/schema.js";
import { costMicros, priceFor } from "./pricing.js";
import type { UsageRecord } from "./usage-event.js";

/** UTC periods the budgets are counted in; both reset at midnight UTC. */
export function periodsOf(at: Date): { day: string; month: string } {
  const iso = at.toISOString();
  return { day: `day:${iso.slice(0, 10)}`, month: `month:${iso.slice(0, 7)}` };
}

/**
 * Writes one usage event, idempotently: the event id is unique per tenant, and a second write of
 * the same id only increments `duplicate_count` (kept for the reconciliation report). Counters
 * move only when the event is new and charged, in the same transaction, so they always equal the
 * sum of the ledger.
 */
export async function recordUsage(
  scope: TenantScope,
  record: UsageRecord,
  internalRate: number,
): Promise<{ inserted: boolean; tokens: number; costMicros: number }> {
  const price = await priceFor(scope.tx, record.provider, record.model, internalRate);
  const charged = record.status === "charged";
  const tokens = charged ? record.inputTokens + record.outputTokens : 0;
  const cost = charged ? costMicros(price, record) : 0;
  const ctx = scope.ctx;
  const [row] = await queryRows<{ inserted: boolean }>(
    scope.tx,
    sql`INSERT INTO ${usageEvents} (tenant_id, event_id, project, environment, key_id, request_id, feature, provider,
          model, input_tokens, output_tokens, cached_tokens, cost_micros, price_version, status, usage_estimated,
          retry_of, error)
        VALUES (${ctx.tenantId}, ${record.eventId}, ${ctx.project}, ${ctx.environment}, ${ctx.keyId}, ${ctx.requestId},
          ${record.feature}, ${record.provider}, ${record.model}, ${record.inputTokens}, ${record.outputTokens},
          ${record.cachedTokens ?? 0}, ${cost}, ${price.version}, ${record.status}, ${record.usageEstimated ?? false},
          ${record.retryOf ?? null}, ${record.error ?? null})
        ON CONFLICT (tenant_id, event_id) DO UPDATE SET duplicate_count = ${usageEvents.duplicateCount} + 1
        RETURNING (xmax = 0) AS inserted`,
  );
  const inserted = row?.inserted === true;
  if (inserted && charged && (tokens > 0 || cost > 0)) {
    const { day, month } = periodsOf(new Date());
    for (const period of [day, month]) {
      await scope.tx
        .insert(usageCounters)
        .values({ tenantId: ctx.tenantId, period, tokens, costMicros: cost })
        .onConflictDoUpdate({
          target: [usageCounters.tenantId, usageCounters.period],
          set: { tokens: sql`${usageCounters.tokens} + ${tokens}`, costMicros: sql`${usageCounters.costMicros} + ${cost}` },
        });
    }
  }
  return { inserted, tokens, costMicros: cost };
}
