import { bigint, boolean, date, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { platformAll, RowLevelSecurity, tenantIsolation } from "./rls.js";
import { tenants } from "./tenancy.js";

/** Metering: prices, the usage ledger, its running totals, and the budget held in flight. */

/** Versioned prices per provider and model, in micro-units per million tokens. */
export const prices = pgTable(
  "prices",
  {
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    version: integer("version").notNull(),
    inputMicrosPerMTok: bigint("input_micros_per_mtok", { mode: "number" }).notNull(),
    outputMicrosPerMTok: bigint("output_micros_per_mtok", { mode: "number" }).notNull(),
    cachedMicrosPerMTok: bigint("cached_micros_per_mtok", { mode: "number" }).notNull().default(0),
    effectiveFrom: timestamp("effective_from", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.provider, t.model, t.version] })],
);

/** No RLS: platform data; fence_app is granted SELECT only (drizzle/0003). */
export const pricesRls = RowLevelSecurity.off(prices);

/**
 * The usage ledger. One row per billable event, idempotent by `event_id` within a tenant: a
 * replayed event increments `duplicate_count` instead of counting again. Failed provider calls
 * are kept (status `failed`, no cost) as the technical record; a retry points at its original.
 */
export const usageEvents = pgTable(
  "usage_events",
  {
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    id: uuid("id").notNull().defaultRandom(),
    eventId: text("event_id").notNull(),
    project: text("project").notNull(),
    environment: text("environment").notNull(),
    keyId: uuid("key_id"),
    requestId: text("request_id").notNull(),
    feature: text("feature").notNull(),
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    inputTokens: bigint("input_tokens", { mode: "number" }).notNull().default(0),
    outputTokens: bigint("output_tokens", { mode: "number" }).notNull().default(0),
    cachedTokens: bigint("cached_tokens", { mode: "number" }).notNull().default(0),
    costMicros: bigint("cost_micros", { mode: "number" }).notNull().default(0),
    priceVersion: integer("price_version"),
    status: text("status").notNull(),
    usageEstimated: boolean("usage_estimated").notNull().default(false),
    retryOf: text("retry_of"),
    duplicateCount: integer("duplicate_count").notNull().default(0),
    error: text("error"),
    occurredAt: timestamp("occurred_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    uniqueIndex("usage_events_tenant_event_idx").on(t.tenantId, t.eventId),
    index("usage_events_tenant_time_idx").on(t.tenantId, t.occurredAt),
    /**
     * The platform's reports over every tenant read a time window: the ledger is appended in time
     * order, so a BRIN index (a few pages for millions of rows, next to nothing per insert) finds it.
     */
    index("usage_events_time_brin_idx").using("brin", t.occurredAt),
  ],
);

/** RLS (drizzle/0003): tenant-owned. */
export const usageEventsRls = RowLevelSecurity.forced(usageEvents, [tenantIsolation(), platformAll()]);

/** The key a rollup row is metered to when the work had no API key (the nil UUID: a key column may not be null in a primary key). */
export const NO_KEY_ID = "00000000-0000-0000-0000-000000000000";

/**
 * The ledger summed per UTC day and per everything a usage report groups by (metering/usage-daily.ts):
 * a report over whole days reads these rows instead of every event, so 30 days of a busy tenant's
 * usage is a few hundred rows, not hundreds of thousands. `events` and the token and cost sums are
 * the charged events'; the other counts are the reconciliation report's (failed calls, replays
 * refused, retries, internal-rate usage). Written by recordUsage in the statement that writes (or
 * refuses to rewrite) the event, on the event's own day, so it always equals the ledger's sums.
 *
 * No foreign key to `tenants` (unlike the ledger): on a Citus cluster that is already distributed a
 * new table cannot be created with one to a distributed table; purging a tenant deletes its rows.
 */
export const usageDaily = pgTable(
  "usage_daily",
  {
    tenantId: uuid("tenant_id").notNull(),
    day: date("day", { mode: "string" }).notNull(),
    model: text("model").notNull(),
    project: text("project").notNull(),
    environment: text("environment").notNull(),
    feature: text("feature").notNull(),
    keyId: uuid("key_id").notNull(),
    events: bigint("events", { mode: "number" }).notNull(),
    inputTokens: bigint("input_tokens", { mode: "number" }).notNull(),
    outputTokens: bigint("output_tokens", { mode: "number" }).notNull(),
    cachedTokens: bigint("cached_tokens", { mode: "number" }).notNull(),
    costMicros: bigint("cost_micros", { mode: "number" }).notNull(),
    failedEvents: bigint("failed_events", { mode: "number" }).notNull().default(0),
    /** Events written again at least once (each counted once), and how many writes were refused. */
    duplicatedEvents: bigint("duplicated_events", { mode: "number" }).notNull().default(0),
    duplicatesPrevented: bigint("duplicates_prevented", { mode: "number" }).notNull().default(0),
    retries: bigint("retries", { mode: "number" }).notNull().default(0),
    /** Charged events of a model without a price row, metered at the internal rate. */
    internalRateEvents: bigint("internal_rate_events", { mode: "number" }).notNull().default(0),
  },
  (t) => [primaryKey({ name: "usage_daily_pk", columns: [t.tenantId, t.day, t.model, t.project, t.environment, t.feature, t.keyId] })],
);

/** RLS (drizzle/0018): tenant-owned, the own-rows policy in its per-row form (see the migration). */
export const usageDailyRls = RowLevelSecurity.forced(usageDaily, [tenantIsolation("per-row"), platformAll()]);

/**
 * Running totals per tenant and period, kept with the ledger: `day:2026-11-23` and `month:2026-11`
 * for the tenant's budgets, `key:<key id>:month:2026-11` for a key's own monthly caps.
 */
export const usageCounters = pgTable(
  "usage_counters",
  {
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    period: text("period").notNull(),
    tokens: bigint("tokens", { mode: "number" }).notNull().default(0),
    costMicros: bigint("cost_micros", { mode: "number" }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.period] })],
);

/** RLS (drizzle/0003): tenant-owned. */
export const usageCountersRls = RowLevelSecurity.forced(usageCounters, [tenantIsolation(), platformAll()]);

/** Budget held by requests in flight; expires so a crashed instance cannot hold budget forever. */
export const budgetReservations = pgTable(
  "budget_reservations",
  {
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    id: uuid("id").notNull().defaultRandom(),
    requestId: text("request_id").notNull(),
    /** The API key the work is charged to: its own monthly caps count what its requests hold. */
    keyId: uuid("key_id"),
    tokens: bigint("tokens", { mode: "number" }).notNull(),
    costMicros: bigint("cost_micros", { mode: "number" }).notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] })],
);

/** RLS (drizzle/0003): tenant-owned. */
export const budgetReservationsRls = RowLevelSecurity.forced(budgetReservations, [tenantIsolation(), platformAll()]);

export type UsageEventRow = typeof usageEvents.$inferSelect;
