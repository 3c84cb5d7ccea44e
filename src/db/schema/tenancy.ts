import { sql } from "drizzle-orm";
import { bigint, check, integer, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { platformAll, RowLevelSecurity, tenantSelf } from "./rls.js";

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
    /** What the key may do (core/scopes.ts), fixed at creation; keys older than scopes are `owner`. */
    scopes: text("scopes").array().notNull().default(sql`'{owner}'::text[]`),
    /** Past this instant the key authenticates nothing (401 "The API key has expired."). */
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    /** Free text for the humans who manage keys. */
    description: text("description"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    uniqueIndex("api_keys_key_hash_idx").on(t.keyHash),
    check("api_keys_scopes_known", sql`cardinality(${t.scopes}) > 0 AND ${t.scopes} <@ ARRAY['query', 'ingest', 'read', 'owner']::text[]`),
  ],
);

/** RLS (drizzle/0001): no policy for fence_app, so a tenant query can never read key hashes. */
export const apiKeysRls = RowLevelSecurity.forced(apiKeys, [platformAll()]);

export type TenantRow = typeof tenants.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
