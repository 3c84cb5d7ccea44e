import { sql } from "drizzle-orm";
import { bigint, check, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { platformAll, RowLevelSecurity, tenantIsolation, tenantSelf } from "./rls.js";

/** Tenancy: the tenants and the API keys that authenticate them. */

export const tenants = pgTable("tenants", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: text("name").notNull(),
  /** A plan's name; the foreign key to `plans` is hand-written (drizzle/0003). */
  plan: text("plan").notNull().default("free"),
  /** Bumped whenever the tenant's documents change; part of every response-cache key (I5). */
  dataVersion: bigint("data_version", { mode: "number" }).notNull().default(0),
  /**
   * The key of the HMAC that names the tenant's cache entries (I5); rotated when documents are
   * deleted, so no instance can reach what was cached before. Read with the API key.
   */
  cacheSecret: text("cache_secret")
    .notNull()
    .default(sql`replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')`),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  /**
   * Set by the platform admin to stop the tenant: while set, none of its keys authenticates (403
   * tenant_suspended) and the scheduler claims none of its queued jobs; cleared to resume. Its data
   * stays as it was (purging is the separate, irreversible step).
   */
  suspendedAt: timestamp("suspended_at", { withTimezone: true }),
});

/** RLS (drizzle/0001): a tenant sees only its own row; column grants limit what it may update. */
export const tenantsRls = RowLevelSecurity.forced(tenants, [tenantSelf(), platformAll()]);

export const apiKeys = pgTable(
  "api_keys",
  {
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    id: uuid("id").notNull().defaultRandom(),
    name: text("name").notNull(),
    /** Shown to humans to tell keys apart; never enough to authenticate. */
    prefix: text("prefix").notNull(),
    /** SHA-256 of the whole key; the plaintext is shown once and never stored. */
    keyHash: text("key_hash").notNull(),
    project: text("project").notNull().default("default"),
    environment: text("environment").notNull().default("prod"),
    /** A limit of this key's own, below the plan's (e.g. for a key handed to a batch script). */
    requestsPerMinute: integer("requests_per_minute"),
    /**
     * Monthly caps of this key's own (UTC month), below the tenant's budgets: spend beyond them is
     * refused with 402 like a tenant budget, reserved the same way (metering/budget-guard.ts).
     * Null: only the tenant's budgets apply.
     */
    tokensPerMonth: bigint("tokens_per_month", { mode: "number" }),
    spendPerMonthMicros: bigint("spend_per_month_micros", { mode: "number" }),
    /** What the key may do (core/scopes.ts), fixed at creation; keys older than scopes are `owner`. */
    scopes: text("scopes").array().notNull().default(sql`'{owner}'::text[]`),
    /** Past this instant the key authenticates nothing (401 "The API key has expired."). */
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    /** Free text for the humans who manage keys. */
    description: text("description"),
    /**
     * The tenant key that made this one through POST /v1/keys; NULL when the platform admin did.
     * Revoking a key revokes every key it made, transitively (tenancy/tenant-keys.ts).
     */
    createdByKeyId: uuid("created_by_key_id"),
    /**
     * After POST /v1/keys/:id/rotate, the secret the key had before: it still authenticates until
     * `prior_key_expires_at` (the grace period the owner chose), so clients can switch over. The key
     * keeps its id, scopes, limits, spend and audit trail across rotations.
     */
    priorKeyHash: text("prior_key_hash"),
    priorKeyExpiresAt: timestamp("prior_key_expires_at", { withTimezone: true }),
    /** When `key_hash` was set (issued or rotated): how KeyDirectory learns of new secrets incrementally. */
    secretSetAt: timestamp("secret_set_at", { withTimezone: true }).notNull().defaultNow(),
    /**
     * When the key last authenticated a request, to within a minute: written at most once a minute
     * per key and instance (tenancy/key-use.ts), never once per request. Advisory, for the humans
     * deciding which keys to revoke.
     */
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    uniqueIndex("api_keys_key_hash_idx").on(t.keyHash),
    // Not unique: a unique index must hold the distribution column on Citus, and a secret is 32
    // random bytes (tenancy/api-keys.ts), so uniqueness adds nothing to the lookup.
    index("api_keys_prior_key_hash_idx").on(t.priorKeyHash),
    check("api_keys_scopes_known", sql`cardinality(${t.scopes}) > 0 AND ${t.scopes} <@ ARRAY['query', 'ingest', 'read', 'owner']::text[]`),
  ],
);

/**
 * RLS (drizzle/0001, 0015): the platform authenticates keys across tenants; a tenant's owner
 * manages its own keys (POST/GET/DELETE /v1/keys) as fence_app, which sees and writes only its
 * tenant's rows and has no DELETE grant (a key is revoked, never erased). The policy is in the
 * per-row form from the start, so the migration also applies to an already distributed Citus table.
 */
export const apiKeysRls = RowLevelSecurity.forced(apiKeys, [tenantIsolation("per-row"), platformAll()]);

export type TenantRow = typeof tenants.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
