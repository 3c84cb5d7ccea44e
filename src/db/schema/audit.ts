import { index, jsonb, pgTable, primaryKey, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { platformAll, RowLevelSecurity, tenantIsolation } from "./rls.js";

/** Audit: who changed a tenant's keys, settings or plan, and the tenant itself (issue 18). */

export type AuditActor = "admin" | "key";

/**
 * One change, written in the transaction that makes it, so there is no change without its event
 * and no event without its change. `before` and `after` hold the changed object's fields as the
 * API shows them, never a secret (a key's plaintext or hash).
 *
 * Append-only: neither fence_app nor fence_platform holds UPDATE or DELETE (drizzle/0015). There
 * is no foreign key to `tenants`, so a purged tenant's trail — and the purge itself — remains for
 * the platform (GET /v1/admin/audit); it holds key names and settings, never documents.
 */
export const auditEvents = pgTable(
  "audit_events",
  {
    tenantId: uuid("tenant_id").notNull(),
    id: uuid("id").notNull().defaultRandom(),
    at: timestamp("at", { withTimezone: true }).notNull().defaultNow(),
    actor: text("actor").$type<AuditActor>().notNull(),
    /** The tenant key that made the change (actor `key`); NULL for the platform admin. */
    actorKeyId: uuid("actor_key_id"),
    /** `<object>.<verb>`, e.g. `key.created`, `key.revoked`, `key.rotated`, `tenant.purged`. */
    action: text("action").notNull(),
    targetId: text("target_id"),
    before: jsonb("before").$type<Record<string, unknown>>(),
    after: jsonb("after").$type<Record<string, unknown>>(),
    requestId: text("request_id"),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] }), index("audit_events_tenant_at_idx").on(t.tenantId, t.at, t.id)],
);

/** RLS (drizzle/0015): an owner reads its own tenant's trail; per-row form (see apiKeysRls). */
export const auditEventsRls = RowLevelSecurity.forced(auditEvents, [tenantIsolation("per-row"), platformAll()]);

export type AuditEventRow = typeof auditEvents.$inferSelect;
