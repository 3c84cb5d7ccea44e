import { and, desc, eq, sql, type SQL } from "drizzle-orm";
import { ValidationError } from "../core/errors.js";
import { isUuid, type TenantContext } from "../core/tenant-context.js";
import type { Database, Tx } from "../db/database.js";
import { auditEvents, type AuditActor, type AuditEventRow } from "../db/schema.js";

/**
 * The audit trail (issue 18): every change to a tenant's keys and configuration, to tenants and to
 * plans — who made it (the platform admin, or which tenant key), what, when, and the object before
 * and after, never a secret. Events are written with `recordAuditEvent` inside the transaction that
 * makes the change; the table is append-only for both database roles (drizzle/0015).
 */

/** Plans belong to no tenant: their events are filed under this id, which no tenant has (gen_random_uuid never yields it). */
export const PLATFORM_TENANT_ID = "00000000-0000-0000-0000-000000000000";

export interface AuditEventInput {
  tenantId: string;
  /** The tenant key that made the change; undefined for the platform admin. */
  actorKeyId?: string | undefined;
  action: string;
  targetId?: string | undefined;
  /** The object as the API shows it (a JSON-able object), never a secret. */
  before?: object | null | undefined;
  after?: object | null | undefined;
  requestId?: string | undefined;
}

export async function recordAuditEvent(tx: Tx, event: AuditEventInput): Promise<void> {
  await recordAuditEvents(tx, [event]);
}

export async function recordAuditEvents(tx: Tx, events: readonly AuditEventInput[]): Promise<void> {
  if (events.length === 0) return;
  await tx.insert(auditEvents).values(
    events.map((event) => ({
      tenantId: event.tenantId,
      actor: (event.actorKeyId ? "key" : "admin") as AuditActor,
      actorKeyId: event.actorKeyId ?? null,
      action: event.action,
      targetId: event.targetId ?? null,
      before: (event.before ?? null) as Record<string, unknown> | null,
      after: (event.after ?? null) as Record<string, unknown> | null,
      requestId: event.requestId ?? null,
    })),
  );
}

export interface AuditPage {
  events: AuditEventRow[];
  nextCursor: string | null;
}

export interface AuditFilter {
  limit: number;
  /** The id of the last event of the previous page. */
  cursor?: string | undefined;
  action?: string | undefined;
}

export class AuditLog {
  constructor(private readonly db: Database) {}

  /** The tenant's own trail, newest first, as fence_app (RLS) with the explicit tenant predicate. */
  forTenant(ctx: TenantContext, filter: AuditFilter): Promise<AuditPage> {
    return this.db.withTenant(ctx, (scope) => listEvents(scope.tx, scope.owns(auditEvents.tenantId), filter));
  }

  /** Every tenant's trail (and the plans'), or one tenant's, for the platform admin. */
  forPlatform(filter: AuditFilter & { tenantId?: string | undefined }): Promise<AuditPage> {
    if (filter.tenantId !== undefined && !isUuid(filter.tenantId)) return Promise.resolve({ events: [], nextCursor: null });
    return this.db.asPlatformAdmin("list-audit-events", (tx) =>
      listEvents(tx, filter.tenantId ? eq(auditEvents.tenantId, filter.tenantId) : sql`true`, filter),
    );
  }
}

/** Newest first. A cursor of another tenant's event answers like a made-up one (I6). */
async function listEvents(tx: Tx, owns: SQL, filter: AuditFilter): Promise<AuditPage> {
  const conditions: SQL[] = [owns];
  if (filter.action) conditions.push(eq(auditEvents.action, filter.action));
  if (filter.cursor) {
    const [after] = isUuid(filter.cursor)
      ? await tx.select({ tenantId: auditEvents.tenantId, id: auditEvents.id }).from(auditEvents).where(and(owns, eq(auditEvents.id, filter.cursor)))
      : [];
    if (!after) throw new ValidationError("Invalid pagination cursor.");
    // Compared in the database: `at` has microseconds, a JavaScript Date only milliseconds.
    conditions.push(
      sql`(${auditEvents.at}, ${auditEvents.id}) < ((SELECT c.at FROM audit_events c WHERE c.tenant_id = ${after.tenantId} AND c.id = ${after.id}), ${after.id}::uuid)`,
    );
  }
  const rows = await tx
    .select()
    .from(auditEvents)
    .where(and(...conditions))
    .orderBy(desc(auditEvents.at), desc(auditEvents.id))
    .limit(filter.limit + 1);
  const page = rows.slice(0, filter.limit);
  return { events: page, nextCursor: rows.length > filter.limit ? page.at(-1)!.id : null };
}
