import { and, eq, gt, gte, inArray, lt, sql, type SQL } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import { queryRows, type Database, type TenantScope, type Tx } from "../db/database.js";
import { NO_KEY_ID, tenants, usageDaily, usageEvents } from "../db/schema.js";
import type { TenantContext } from "../core/tenant-context.js";
import { reconciliation, reconciliationSummary, type ReconciliationReport, type ReconciliationSummary } from "./reconciliation.js";
import { resolveUsageRange, type UsageRange } from "./usage-range.js";
import { splitIntoWholeDays } from "./usage-daily.js";

/**
 * Showback: what the ledger says a tenant used, grouped one way. Only `charged` events count
 * (a failed call cost nothing; it is in the reconciliation report instead), so these totals are
 * the same numbers the budgets are counted in.
 */
export const TENANT_GROUP_BY = ["day", "model", "project", "environment", "feature", "key"] as const;
export const ADMIN_GROUP_BY = ["tenant", ...TENANT_GROUP_BY] as const;
export type TenantGroupBy = (typeof TENANT_GROUP_BY)[number];
export type AdminGroupBy = (typeof ADMIN_GROUP_BY)[number];

export interface UsageTotals {
  events: number;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  /** Input + output: cached tokens are part of the input, billed at the cached rate. */
  total_tokens: number;
  cost_micros: number;
}

export interface UsageRow extends UsageTotals {
  key: string;
  /** Only when grouped by tenant (admin report). */
  tenant_name?: string;
}

export interface UsageReport<G extends string = AdminGroupBy> {
  from: string;
  to: string;
  group_by: G;
  rows: UsageRow[];
  totals: UsageTotals;
}

export interface UsageQuery<G extends string> {
  from?: string | undefined;
  to?: string | undefined;
  groupBy: G;
}

/**
 * What each grouping groups by, in the ledger and in its daily rollup (usage-daily.ts). Days are UTC
 * days, like the budget periods. The rollup keeps "no key" as the nil UUID; the report says `none`.
 */
const GROUP_KEY: Record<AdminGroupBy, { events: SQL; daily: SQL }> = {
  day: { events: sql`to_char(${usageEvents.occurredAt} AT TIME ZONE 'UTC', 'YYYY-MM-DD')`, daily: sql`to_char(${usageDaily.day}, 'YYYY-MM-DD')` },
  model: { events: sql`${usageEvents.model}`, daily: sql`${usageDaily.model}` },
  project: { events: sql`${usageEvents.project}`, daily: sql`${usageDaily.project}` },
  environment: { events: sql`${usageEvents.environment}`, daily: sql`${usageDaily.environment}` },
  feature: { events: sql`${usageEvents.feature}`, daily: sql`${usageDaily.feature}` },
  /** The API key the usage was metered to (a rotated key keeps its id, so its spend stays one row). */
  key: {
    events: sql`coalesce(${usageEvents.keyId}::text, 'none')`,
    daily: sql`coalesce(nullif(${usageDaily.keyId}, ${sql.raw(`'${NO_KEY_ID}'`)}::uuid)::text, 'none')`,
  },
  tenant: { events: sql`${usageEvents.tenantId}::text`, daily: sql`${usageDaily.tenantId}::text` },
};

/** Restricts a query to the calling tenant's rows (`scope.owns`), or to none of them for the platform. */
type TenantFilter = (tenantColumn: AnyPgColumn) => SQL | undefined;

/** The calling tenant's usage. Runs inside its `withTenant` transaction: RLS and `owns()` both apply. */
export async function usageForTenant(scope: TenantScope, query: UsageQuery<TenantGroupBy>): Promise<UsageReport<TenantGroupBy>> {
  const range = resolveUsageRange(query);
  const rows = await aggregate(scope.tx, range, query.groupBy, (column) => scope.owns(column));
  return report(range, query.groupBy, rows);
}

/** Every tenant's usage: an audited platform operation (`asPlatformAdmin`), never a tenant path. */
export async function usageForAllTenants(tx: Tx, query: UsageQuery<AdminGroupBy>): Promise<UsageReport<AdminGroupBy>> {
  const range = resolveUsageRange(query);
  const rows = await aggregate(tx, range, query.groupBy, () => undefined);
  if (query.groupBy === "tenant" && rows.length > 0) {
    const names = await tx
      .select({ id: tenants.id, name: tenants.name })
      .from(tenants)
      .where(inArray(tenants.id, rows.map((row) => row.key)));
    const nameOf = new Map(names.map((t) => [t.id, t.name]));
    for (const row of rows) row.tenant_name = nameOf.get(row.key) ?? "";
  }
  return report(range, query.groupBy, rows);
}

/**
 * Sums the charged usage in the window: the whole UTC days from the daily rollup, the partial days
 * at the window's edges from the ledger itself — the same totals as summing every event, at the
 * cost of a few rows per day instead of every event (a month of a busy tenant: 100,000 events).
 */
async function aggregate(tx: Tx, range: UsageRange, groupBy: AdminGroupBy, own: TenantFilter): Promise<UsageRow[]> {
  const key = GROUP_KEY[groupBy];
  const { days, edges } = splitIntoWholeDays(range.from, range.to);
  const parts: SQL[] = edges.map(
    ([from, to]) =>
      sql`SELECT ${key.events} AS key, count(*) AS events, sum(${usageEvents.inputTokens}) AS input,
            sum(${usageEvents.outputTokens}) AS output, sum(${usageEvents.cachedTokens}) AS cached, sum(${usageEvents.costMicros}) AS cost
          FROM ${usageEvents}
          WHERE ${and(own(usageEvents.tenantId), eq(usageEvents.status, "charged"), gte(usageEvents.occurredAt, from), lt(usageEvents.occurredAt, to))}
          GROUP BY 1`,
  );
  if (days) {
    parts.push(
      sql`SELECT ${key.daily} AS key, sum(${usageDaily.events}) AS events, sum(${usageDaily.inputTokens}) AS input,
            sum(${usageDaily.outputTokens}) AS output, sum(${usageDaily.cachedTokens}) AS cached, sum(${usageDaily.costMicros}) AS cost
          FROM ${usageDaily}
          WHERE ${and(own(usageDaily.tenantId), gte(usageDaily.day, days.from), lt(usageDaily.day, days.to), gt(usageDaily.events, 0))}
          GROUP BY 1`,
    );
  }
  // Sums of bigint are numeric: read as text so neither driver rounds or returns a BigInt.
  const rows = await queryRows<{ key: string; events: string; input: string; output: string; cached: string; cost: string }>(
    tx,
    sql`SELECT key, sum(events)::text AS events, sum(input)::text AS input, sum(output)::text AS output,
          sum(cached)::text AS cached, sum(cost)::text AS cost
        FROM (${sql.join(parts, sql` UNION ALL `)}) AS parts
        GROUP BY key ORDER BY key`,
  );
  return rows.map((r) => {
    const input = Number(r.input);
    const output = Number(r.output);
    return {
      key: r.key,
      ...(groupBy === "tenant" ? { tenant_name: "" } : {}),
      events: Number(r.events),
      input_tokens: input,
      output_tokens: output,
      cached_tokens: Number(r.cached),
      total_tokens: input + output,
      cost_micros: Number(r.cost),
    };
  });
}

function report<G extends AdminGroupBy>(range: UsageRange, groupBy: G, rows: UsageRow[]): UsageReport<G> {
  const totals: UsageTotals = { events: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0, total_tokens: 0, cost_micros: 0 };
  for (const row of rows) {
    for (const field of Object.keys(totals) as (keyof UsageTotals)[]) totals[field] += row[field];
  }
  return { from: range.from.toISOString(), to: range.to.toISOString(), group_by: groupBy, rows, totals };
}

/** The reports, each in the transaction it must run in; what the HTTP routes call. */
export class UsageReports {
  constructor(private readonly db: Database) {}

  forTenant(ctx: TenantContext, query: UsageQuery<TenantGroupBy>): Promise<UsageReport<TenantGroupBy>> {
    resolveUsageRange(query); // a bad window is refused before a transaction is opened
    return this.db.withTenant(ctx, (scope) => usageForTenant(scope, query));
  }

  forAllTenants(query: UsageQuery<AdminGroupBy>): Promise<UsageReport<AdminGroupBy>> {
    resolveUsageRange(query);
    return this.db.asPlatformAdmin("usage-report", (tx) => usageForAllTenants(tx, query));
  }

  reconcile(query: { from?: string | undefined; to?: string | undefined }): Promise<ReconciliationReport> {
    resolveUsageRange(query);
    return this.db.asPlatformAdmin("usage-reconciliation", (tx) => reconciliation(tx, query));
  }

  /** The reconciliation's counts only (what the console shows beside the report), from the rollup. */
  reconcileSummary(query: { from?: string | undefined; to?: string | undefined }): Promise<ReconciliationSummary> {
    const range = resolveUsageRange(query);
    return this.db.asPlatformAdmin("usage-reconciliation", (tx) => reconciliationSummary(tx, range));
  }
}

export { reconciliation, type ReconciliationReport };
