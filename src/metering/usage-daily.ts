import { sql } from "drizzle-orm";
import type { Tx } from "../db/database.js";
import { NO_KEY_ID, usageDaily, usageEvents } from "../db/schema.js";

/**
 * The daily usage rollup (`usage_daily`): the ledger summed per UTC day and per model, project,
 * environment, feature and key. recordUsage (ledger.ts) keeps it in step with each event it writes;
 * a report or a reconciliation over whole UTC days reads it instead of the events
 * (usage-report.ts, reconciliation.ts).
 */

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Splits a report window into the whole UTC days it covers, which the rollup answers, and the
 * partial days at its edges, which only the events can: `[from, to)` is `[from, daysFrom)` +
 * `[daysFrom, daysTo)` + `[daysTo, to)`. No whole day (a window inside one day, or across one
 * midnight): `days` is undefined and the events answer all of it.
 */
export function splitIntoWholeDays(from: Date, to: Date): { days?: { from: string; to: string }; edges: [Date, Date][] } {
  const daysFrom = Math.ceil(from.getTime() / DAY_MS) * DAY_MS;
  const daysTo = Math.floor(to.getTime() / DAY_MS) * DAY_MS;
  if (daysFrom >= daysTo) return { edges: [[from, to]] };
  const edges: [Date, Date][] = [];
  if (from.getTime() < daysFrom) edges.push([from, new Date(daysFrom)]);
  if (daysTo < to.getTime()) edges.push([new Date(daysTo), to]);
  return { days: { from: isoDay(daysFrom), to: isoDay(daysTo) }, edges };
}

function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * Recomputes the rollup from the ledger: for one tenant, or for every tenant when `tenantId` is
 * undefined. For whoever changed events outside recordUsage (a correction by hand, a seeded
 * benchmark, a test that moves events to another day); run as the platform (`asPlatformAdmin`).
 * drizzle/0018 backfilled the rollup with the same sums.
 */
export async function rebuildUsageDaily(tx: Tx, tenantId?: string): Promise<void> {
  const e = usageEvents;
  const ofTenant = (column: typeof e.tenantId | typeof usageDaily.tenantId) => (tenantId === undefined ? sql`true` : sql`${column} = ${tenantId}`);
  const charged = sql`${e.status} = 'charged'`;
  await tx.execute(sql`DELETE FROM ${usageDaily} WHERE ${ofTenant(usageDaily.tenantId)}`);
  await tx.execute(
    sql`INSERT INTO ${usageDaily} (tenant_id, day, model, project, environment, feature, key_id, events, input_tokens,
          output_tokens, cached_tokens, cost_micros, failed_events, duplicated_events, duplicates_prevented, retries,
          internal_rate_events)
        SELECT ${e.tenantId}, (${e.occurredAt} AT TIME ZONE 'UTC')::date, ${e.model}, ${e.project}, ${e.environment}, ${e.feature},
          coalesce(${e.keyId}, ${NO_KEY_ID}::uuid), count(*) FILTER (WHERE ${charged}),
          coalesce(sum(${e.inputTokens}) FILTER (WHERE ${charged}), 0), coalesce(sum(${e.outputTokens}) FILTER (WHERE ${charged}), 0),
          coalesce(sum(${e.cachedTokens}) FILTER (WHERE ${charged}), 0), coalesce(sum(${e.costMicros}) FILTER (WHERE ${charged}), 0),
          count(*) FILTER (WHERE ${e.status} = 'failed'), count(*) FILTER (WHERE ${e.duplicateCount} > 0),
          coalesce(sum(${e.duplicateCount}), 0), count(*) FILTER (WHERE ${e.retryOf} IS NOT NULL),
          count(*) FILTER (WHERE ${charged} AND ${e.priceVersion} IS NULL)
        FROM ${e}
        WHERE ${ofTenant(e.tenantId)}
        GROUP BY 1, 2, 3, 4, 5, 6, 7`,
  );
}
