import { asc, eq, sql } from "drizzle-orm";
import { recordAuditEvent } from "../audit/audit-log.js";
import type { Database } from "../db/database.js";
import { retryingDeadlocks } from "../db/transaction-retry.js";
import { apiKeys, plans, runsDaily, tenants, usageDaily } from "../db/schema.js";
import { NotFoundError, ValidationError } from "../core/errors.js";
import type { TenantCaches } from "../cache/tenant-caches.js";
import { insertKey, revokeKeyAndItsKeys, type IssuedKey, type KeyRequest } from "./key-records.js";
import { announceKeyChange } from "../db/key-changes.js";
import type { KeyDirectory } from "./key-directory.js";
import type { ChangeSink } from "../db/change-feed.js";
import { isUuid } from "../core/tenant-context.js";

export interface TenantSummary {
  id: string;
  name: string;
  plan: string;
  createdAt: Date;
  /** When the platform suspended it; null while it is active. */
  suspendedAt: Date | null;
}

/**
 * Platform-admin operations on tenants and their keys. Every method goes through
 * `asPlatformAdmin`, the one audited path that crosses tenants.
 */
export class TenantAdmin {
  constructor(
    private readonly db: Database,
    private readonly caches: TenantCaches,
    /** Told of keys issued here, so their first request here needs no directory refresh. */
    private readonly keyDirectory?: KeyDirectory,
    /** This instance's verified keys: dropped on commit here, before the change feed says so. */
    private readonly verifiedKeys?: ChangeSink,
  ) {}

  async createTenant(input: { name: string; plan: string }): Promise<TenantSummary> {
    const row = await this.db.asPlatformAdmin("create-tenant", async (tx) => {
      const [plan] = await tx.select({ name: plans.name }).from(plans).where(eq(plans.name, input.plan));
      if (!plan) throw new ValidationError(`Invalid request: plan: unknown plan '${input.plan}'`);
      const [inserted] = await tx.insert(tenants).values({ name: input.name, plan: input.plan }).returning();
      await recordAuditEvent(tx, { tenantId: inserted!.id, action: "tenant.created", targetId: inserted!.id, after: tenantView(inserted!) });
      return inserted!;
    });
    return summarize(row);
  }

  async listTenants(): Promise<TenantSummary[]> {
    const rows = await this.db.asPlatformAdmin("list-tenants", (tx) =>
      tx.select().from(tenants).orderBy(asc(tenants.createdAt), asc(tenants.id)),
    );
    return rows.map(summarize);
  }

  /**
   * Deletes the tenant and, by cascade, every row it owns; then drops its cache entries here and in
   * Redis (elsewhere they are unreachable: no key of the tenant authenticates any more).
   */
  async purgeTenant(tenantId: string): Promise<void> {
    if (!isUuid(tenantId)) throw new NotFoundError("Tenant");
    // The cascade locks every row the tenant owns, after the tenant's row: a job of the tenant
    // holding one of them while its foreign-key check waits for the tenant's row is a deadlock,
    // which Postgres breaks by aborting one side (perhaps this one).
    const deleted = await retryingDeadlocks(() =>
      this.db.asPlatformAdmin("purge-tenant", async (tx) => {
        await announceKeyChange(tx, `tenant:${tenantId}`);
        const gone = await tx.delete(tenants).where(eq(tenants.id, tenantId)).returning();
        // The daily rollups have no foreign key to cascade from (db/schema/metering.ts says why). A
        // usage or run write still in flight for the tenant fails on its own table's foreign key,
        // in the transaction that would add to a rollup, so none can add a row after this.
        await tx.delete(usageDaily).where(eq(usageDaily.tenantId, tenantId));
        await tx.delete(runsDaily).where(eq(runsDaily.tenantId, tenantId));
        // The trail outlives the tenant (audit_events has no foreign key to it): the purge is its last event.
        if (gone[0]) await recordAuditEvent(tx, { tenantId, action: "tenant.purged", targetId: tenantId, before: tenantView(gone[0]) });
        return gone;
      }),
    );
    if (deleted.length === 0) throw new NotFoundError("Tenant");
    // The rows are gone, and with them every claim on its queued uploads' files (PGlite).
    await this.db.payloadFiles?.removeTenant(tenantId);
    // Also drops this instance's verified keys of the tenant (TenantCaches' onPurge).
    await this.caches.purgeTenant(tenantId);
  }

  /**
   * Suspends the tenant: from the next request on this instance, and on every other instance within
   * the change feed's bound, its keys authenticate nothing (403 tenant_suspended, authenticate.ts),
   * its console sessions show why, and the scheduler claims none of its queued jobs (they wait, and
   * count against its queue caps as before). Its data, keys and configuration stay as they are; a
   * job already running finishes, as a request in flight does. Suspending a suspended tenant
   * changes nothing and records nothing: it keeps the time it was first suspended.
   */
  suspendTenant(tenantId: string): Promise<TenantSummary> {
    return this.setSuspended(tenantId, true);
  }

  /** Resumes a suspended tenant: its keys work again, and its queued jobs run in their turn. Idempotent too. */
  resumeTenant(tenantId: string): Promise<TenantSummary> {
    return this.setSuspended(tenantId, false);
  }

  private async setSuspended(tenantId: string, suspended: boolean): Promise<TenantSummary> {
    if (!isUuid(tenantId)) throw new NotFoundError("Tenant");
    const row = await this.db.asPlatformAdmin(suspended ? "suspend-tenant" : "resume-tenant", async (tx) => {
      // Locked, so that two admins suspending at once record one event between them. NO KEY UPDATE,
      // not UPDATE: the foreign-key checks of the tenant's inserts (uploads, jobs, runs) take KEY
      // SHARE on this row, and must not wait for it, nor deadlock with it.
      const [current] = await tx.select().from(tenants).where(eq(tenants.id, tenantId)).for("no key update");
      if (!current) throw new NotFoundError("Tenant");
      // Already in that state: nothing is written, and a suspended tenant keeps its first suspended_at.
      if ((current.suspendedAt !== null) === suspended) return current;
      const [changed] = await tx
        .update(tenants)
        .set({ suspendedAt: suspended ? sql`now()` : null })
        .where(eq(tenants.id, tenantId))
        .returning();
      // Announced here as well as by the trigger (drizzle/0018), which Citus does not have: every
      // instance drops its verified copies of the tenant's keys on commit.
      await announceKeyChange(tx, `tenant:${tenantId}`);
      await recordAuditEvent(tx, {
        tenantId,
        action: suspended ? "tenant.suspended" : "tenant.resumed",
        targetId: tenantId,
        before: tenantView(current),
        after: tenantView(changed!),
      });
      return changed!;
    });
    // This instance's copies go now, not when its own notification comes back.
    this.verifiedKeys?.forget(`tenant:${tenantId}`);
    return summarize(row);
  }

  async issueKey(tenantId: string, request: KeyRequest): Promise<IssuedKey> {
    if (!isUuid(tenantId)) throw new NotFoundError("Tenant");
    const { issued, hash } = await this.db.asPlatformAdmin("issue-key", async (tx) => {
      const [tenant] = await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId));
      if (!tenant) throw new NotFoundError("Tenant");
      return insertKey(tx, tenantId, request, "admin");
    });
    this.keyDirectory?.add(hash);
    return issued;
  }

  /**
   * Revokes the key and the keys it made (key-records.ts). Takes effect on the next request on
   * this instance, and on every other instance within the change feed's bound (announced on
   * commit: key-changes.ts; VerifiedKeyCache drops the copy).
   */
  async revokeKey(tenantId: string, keyId: string): Promise<void> {
    if (!isUuid(tenantId) || !isUuid(keyId)) throw new NotFoundError("API key");
    const revoked = await this.db.asPlatformAdmin("revoke-key", (tx) => revokeKeyAndItsKeys(tx, eq(apiKeys.tenantId, tenantId), tenantId, keyId, "admin"));
    if (revoked.length === 0) throw new NotFoundError("API key");
    this.verifiedKeys?.forget(`tenant:${tenantId}`);
  }
}

function summarize(row: typeof tenants.$inferSelect): TenantSummary {
  return { id: row.id, name: row.name, plan: row.plan, createdAt: row.createdAt, suspendedAt: row.suspendedAt };
}

/** A tenant as its audit events record it (its cache secret is a secret, so it is left out). */
function tenantView(row: typeof tenants.$inferSelect): Record<string, unknown> {
  return {
    id: row.id,
    name: row.name,
    plan: row.plan,
    created_at: row.createdAt.toISOString(),
    suspended_at: row.suspendedAt?.toISOString() ?? null,
  };
}
