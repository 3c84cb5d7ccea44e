import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AdminGroupBy, UsageReport } from "../../metering/usage-report.js";
import { toCsv } from "../csv.js";
import { commonErrors } from "../schemas.js";
import { AdminUsageQuery, AdminUsageReport, Reconciliation, ReconciliationQuery, TenantUsageQuery, TenantUsageReport } from "../schemas-cost.js";
import type { FenceServices } from "../services.js";
import type { AppEnv } from "../types.js";
import { validationHook } from "./validation-hook.js";

const tenantUsage = createRoute({
  operationId: "getUsage",
  "x-fence-scope": "read",
  method: "get",
  path: "/usage",
  tags: ["Usage"],
  security: [{ tenantKey: [] }],
  description:
    "The calling tenant's metered usage (charged events only), grouped by `group_by`, in the window " +
    "[`from`, `to`). Only ever the caller's own usage: the tenant comes from the key, never the query.",
  request: { query: TenantUsageQuery },
  responses: { 200: { description: "Usage rows and totals", content: { "application/json": { schema: TenantUsageReport } } }, ...commonErrors },
});

const adminUsage = createRoute({
  operationId: "getAllUsage",
  method: "get",
  path: "/usage",
  tags: ["Platform admin: usage"],
  security: [{ adminKey: [] }],
  description: "Usage of every tenant (showback), as JSON or as a CSV export with a header row.",
  request: { query: AdminUsageQuery },
  responses: {
    200: {
      description: "Usage rows and totals",
      content: { "application/json": { schema: AdminUsageReport }, "text/csv": { schema: z.string() } },
    },
    ...commonErrors,
  },
});

const reconciliationRoute = createRoute({
  operationId: "getUsageReconciliation",
  method: "get",
  path: "/usage/reconciliation",
  tags: ["Platform admin: usage"],
  security: [{ adminKey: [] }],
  description:
    "Events without a provider charge (failed), duplicates the ledger refused to count, retries and their " +
    "originals, and charged usage metered at the internal rate (no price row).",
  request: { query: ReconciliationQuery },
  responses: { 200: { description: "The reconciliation report", content: { "application/json": { schema: Reconciliation } } }, ...commonErrors },
});

/** Mounted on the tenant group (behind tenant authentication). */
export function tenantUsageRoutes({ usageReports: reports }: Pick<FenceServices, "usageReports">): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(tenantUsage, async (c) => {
    const { from, to, group_by } = c.req.valid("query");
    return c.json(await reports.forTenant(c.get("tenant"), { from, to, groupBy: group_by }), 200);
  });
}

/** Mounted on the admin group (behind admin authentication). */
export function adminUsageRoutes({ usageReports: reports }: Pick<FenceServices, "usageReports">): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
    .openapi(adminUsage, async (c) => {
      const { from, to, group_by, format } = c.req.valid("query");
      const report = await reports.forAllTenants({ from, to, groupBy: group_by });
      if (format === "json") return c.json(report, 200);
      return c.body(usageCsv(report), 200, usageCsvHeaders(report)) as never;
    })
    .openapi(reconciliationRoute, async (c) => c.json(await reports.reconcile(c.req.valid("query")), 200));
}

/** One line per row, first column named after the grouping; tenant rows also carry the name. */
/** A CSV report's headers: its type, and a file name that says what it holds. */
export function usageCsvHeaders(report: UsageReport<AdminGroupBy>): Record<string, string> {
  return {
    "content-type": "text/csv; charset=utf-8",
    "content-disposition": `attachment; filename="fence-usage-${report.group_by}-${report.from.slice(0, 10)}-${report.to.slice(0, 10)}.csv"`,
  };
}

export function usageCsv(report: UsageReport<AdminGroupBy>): string {
  const byTenant = report.group_by === "tenant";
  const header = [report.group_by, ...(byTenant ? ["tenant_name"] : []), "events", "input_tokens", "output_tokens", "cached_tokens", "total_tokens", "cost_micros"];
  const rows = report.rows.map((r) => [
    r.key,
    ...(byTenant ? [r.tenant_name ?? ""] : []),
    r.events,
    r.input_tokens,
    r.output_tokens,
    r.cached_tokens,
    r.total_tokens,
    r.cost_micros,
  ]);
  return toCsv(header, rows);
}
