import { bigint, boolean, doublePrecision, integer, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { platformAll, RowLevelSecurity, tenantIsolation } from "./rls.js";
import { tenants } from "./tenancy.js";

/** Plans: the plans tenants are on, and each tenant's own overrides on top of its plan. */

/**
 * Plans are data (seeded free / pro / enterprise, editable by the admin API): the budgets and
 * models both cost control and flow control read. Not tenant-owned; tenants may read them.
 */
export const plans = pgTable("plans", {
  name: text("name").primaryKey(),
  tokensPerDay: bigint("tokens_per_day", { mode: "number" }),
  tokensPerMonth: bigint("tokens_per_month", { mode: "number" }),
  /** Monthly spend cap in micro-units of the billing currency (1 USD = 1,000,000). */
  spendPerMonthMicros: bigint("spend_per_month_micros", { mode: "number" }),
  preferredModel: text("preferred_model"),
  fallbackModel: text("fallback_model"),
  downgradeAllowed: boolean("downgrade_allowed").notNull().default(true),
  /** Share of any budget (0–1) at which requests move to the fallback model. */
  downgradeThreshold: doublePrecision("downgrade_threshold").notNull().default(0.9),
  requestsPerMinute: integer("requests_per_minute"),
  tokensPerMinute: integer("tokens_per_minute"),
  maxConcurrency: integer("max_concurrency"),
  schedulingWeight: integer("scheduling_weight").notNull().default(1),
  /** Ingestion jobs of one tenant that run at once, over all instances. */
  maxRunningJobs: integer("max_running_jobs").notNull().default(1),
  /**
   * Jobs of one tenant not yet finished (queued or running), and the bytes of their kept uploads:
   * an upload past either is refused with 429 `queue_full`, so no tenant fills the shared queue
   * and its database. Null: unlimited.
   */
  maxQueuedJobs: integer("max_queued_jobs").default(1000),
  maxQueuedBytes: bigint("max_queued_bytes", { mode: "number" }).default(1024 * 1024 * 1024),
  /**
   * Feature flags the plan leaves out (`{"chat.llm": false}`); a flag not named is included. A
   * tenant's owner may switch on only what its plan includes; the admin may switch on anything for
   * one tenant (its overrides).
   */
  features: jsonb("features").$type<Record<string, boolean>>().notNull().default({}),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

/** No RLS: platform data; fence_app is granted SELECT only (drizzle/0003). */
export const plansRls = RowLevelSecurity.off(plans);

/** Per-tenant overrides on top of the plan (persona, answer style, flags, retrieval k, …). */
export const tenantConfigs = pgTable("tenant_configs", {
  tenantId: uuid("tenant_id")
    .primaryKey()
    .references(() => tenants.id, { onDelete: "cascade" }),
  overrides: jsonb("overrides").$type<Record<string, unknown>>().notNull().default({}),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

/** RLS (drizzle/0003): tenant-owned; fence_app is granted SELECT only. */
export const tenantConfigsRls = RowLevelSecurity.forced(tenantConfigs, [tenantIsolation(), platformAll()]);

export type PlanRow = typeof plans.$inferSelect;
