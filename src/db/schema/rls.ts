import { sql } from "drizzle-orm";
import { pgPolicy, type PgPolicy, type PgTable } from "drizzle-orm/pg-core";

/**
 * Row-level security as each domain file declares it, next to its table (invariant I2). The
 * database gets it from the hand-written migrations (drizzle/0001, 0003, 0005, 0007), which stay
 * the source of what runs; test/integration/db/schema-row-level-security.test.ts reads pg_policies
 * and pg_class on a migrated database and fails when a declaration and the database disagree.
 *
 * The policies are drizzle's own `pgPolicy` objects, but they are deliberately NOT passed to
 * `pgTable(…)` (nor exported on their own): drizzle-kit would then write a migration creating
 * what 0001–0007 already created, and it has no word for FORCE ROW LEVEL SECURITY.
 */

/** Roles created by drizzle/0001_row_level_security.sql (also named in src/db/database.ts). */
export const TENANT_ROLE = "fence_app";
export const PLATFORM_ROLE = "fence_platform";

/**
 * The tenant of the current transaction, set by `withTenant`. `(SELECT …)` makes the planner
 * evaluate the setting once per query, not once per row; outside `withTenant` it is NULL, and
 * `x = NULL` is never true, so a transaction without a tenant sees no rows.
 */
const CURRENT_TENANT = "(SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)";

/**
 * On Citus a policy on a distributed table may not contain a subquery: the setting is read per row
 * there (db/citus.ts installs this form). The explicit tenant predicate every query carries is what
 * the planner uses; this is the backstop.
 */
const CURRENT_TENANT_PER_ROW = "nullif(current_setting('app.tenant_id', true), '')::uuid";

/** The condition of an own-rows policy: `column` is the transaction's tenant. */
export function ownRowsCondition(column: "tenant_id" | "id", form: "single-node" | "citus" = "single-node"): string {
  return `${column} = ${form === "citus" ? CURRENT_TENANT_PER_ROW : CURRENT_TENANT}`;
}

/** Own-rows policies by name, and the column each compares. */
const OWN_ROWS_COLUMN: Record<string, "tenant_id" | "id"> = { tenant_isolation: "tenant_id", tenant_self: "id" };

/** fence_app reads and writes only rows whose `column` is the transaction's tenant. */
function ownRowsPolicy(name: string, form: "single-node" | "citus" = "single-node"): PgPolicy {
  const own = sql.raw(ownRowsCondition(OWN_ROWS_COLUMN[name]!, form));
  return pgPolicy(name, { as: "permissive", for: "all", to: TENANT_ROLE, using: own, withCheck: own });
}

/**
 * Tenant-owned rows: fence_app sees and writes only the transaction's tenant's. `per-row` is the
 * form a migration must use for a policy it adds to a table that may already be distributed on
 * Citus (no subquery there); it costs a setting read per row, which is nothing on small tables.
 */
export const tenantIsolation = (form: "once-per-query" | "per-row" = "once-per-query"): PgPolicy =>
  ownRowsPolicy("tenant_isolation", form === "per-row" ? "citus" : "single-node");

/** The `tenants` row itself: fence_app sees (and, as its grants allow, updates) only its own. */
export const tenantSelf = (): PgPolicy => ownRowsPolicy("tenant_self");

/** fence_platform, reached only through the audited `asPlatformAdmin()`, sees every row. */
export const platformAll = (): PgPolicy =>
  pgPolicy("platform_all", { as: "permissive", for: "all", to: PLATFORM_ROLE, using: sql`true`, withCheck: sql`true` });

/** One table's row-level security: off, or enabled AND forced (so even the owner is filtered). */
export class RowLevelSecurity {
  private constructor(
    readonly table: PgTable,
    readonly forced: boolean,
    readonly policies: readonly PgPolicy[],
  ) {}

  /**
   * ENABLE and FORCE ROW LEVEL SECURITY with these policies; a role without a policy (e.g.
   * fence_app on `api_keys`) sees no rows at all.
   */
  static forced(table: PgTable, policies: readonly PgPolicy[]): RowLevelSecurity {
    return new RowLevelSecurity(table, true, policies);
  }

  /** No row-level security: platform data that grants alone protect (see the migrations' GRANTs). */
  static off(table: PgTable): RowLevelSecurity {
    return new RowLevelSecurity(table, false, []);
  }

  /** This declaration as Fence installs it on a Citus cluster: own-rows policies in their per-row form. */
  onCitus(): RowLevelSecurity {
    const policies = this.policies.map((policy) => (policy.name in OWN_ROWS_COLUMN ? ownRowsPolicy(policy.name, "citus") : policy));
    return new RowLevelSecurity(this.table, this.forced, policies);
  }
}
