import { and, eq, gte, lt, sql, type SQL } from "drizzle-orm";
import type { Database, TenantScope, Tx } from "../db/database.js";
import { tenants, usageEvents } from "../db/schema.js";
import type { TenantContext } from "../core/tenant-context.js";
import { reconciliation, type ReconciliationReport } from "./reconciliation.js";
import { resolveUsageRange, type UsageRange } from "./usage-range.js";

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

/** Days are UTC days, like the budget periods. Literals only: GROUP BY must repeat the same text. */
const GROUP_KEY: Record<AdminGroupBy, SQL> = {
  day: sql`to_char(${usageEvents.occurredAt} AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
  model: sql`${usageEvents.model}`,
  project: sql`${usageEvents.project}`,
  environment: sql`${usageEvents.environment}`,
  feature: sql`${usageEvents.feature}`,
  /** The API key the usage was metered to (a rotated key keeps its id, so its spend stays one row). */
  key: sql`coalesce(${usageEvents.keyId}::text, 'none')`,
  tenant: sql`${usageEvents.tenantId}::text`,
};

/** The calling tenant's usage. Runs inside its `withTenant` transaction: RLS and `owns()` both apply. */
export async function usageForTenant(scope: TenantScope, query: UsageQuery<TenantGroupBy>): Promise<UsageReport<TenantGroupBy>> {
  const range = resolveUsageRange(query);
  const rows = await aggregate(scope.tx, range, query.groupBy, scope.owns(usageEvents.tenantId));
  return report(range, query.groupBy, rows);
}

/** Every tenant's usage: an audited platform operation (`asPlatformAdmin`), never a tenant path. */
export async function usageForAllTenants(tx: Tx, query: UsageQuery<AdminGroupBy>): Promise<UsageReport<AdminGroupBy>> {
  const range = resolveUsageRange(query);
  const rows = await aggregate(tx, range, query.groupBy, undefined);
  return report(range, query.groupBy, rows);
}

async function aggregate(tx: Tx, range: UsageRange, groupBy: AdminGroupBy, tenantFilter: SQL | undefined): Promise<UsageRow[]> {
  const key = GROUP_KEY[groupBy];
  const byTenant = groupBy === "tenant";
  const where = and(
    tenantFilter,
    eq(usageEvents.status, "charged"),
    gte(usageEvents.occurredAt, range.from),
    lt(usageEvents.occurredAt, range.to),
  );
  // Sums of bigint are numeric: read as text so neither driver rounds or returns a BigInt.
  const fields = {
    key: sql<string>`${key}`,
    events: sql<string>`count(*)::text`,
    input: sql<string>`coalesce(sum(${usageEvents.inputTokens}), 0)::text`,
    output: sql<string>`coalesce(sum(${usageEvents.outputTokens}), 0)::text`,
    cached: sql<string>`coalesce(sum(${usageEvents.cachedTokens}), 0)::text`,
    cost: sql<string>`coalesce(sum(${usageEvents.costMicros}), 0)::text`,
    tenantName: byTenant ? sql<string | null>`min(${tenants.name})` : sql<null>`null`,
  };
  const base = tx.select(fields).from(usageEvents);
  const joined = byTenant ? base.leftJoin(tenants, eq(tenants.id, usageEvents.tenantId)) : base;
  const rows = await joined.where(where).groupBy(key).orderBy(key);
  return rows.map((r) => {
    const input = Number(r.input);
    const output = Number(r.output);
    return {
      key: r.key,
      ...(byTenant ? { tenant_name: r.tenantName ?? "" } : {}),
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
}

export { reconciliation, type ReconciliationReport };
