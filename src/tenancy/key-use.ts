import { and, eq, inArray, isNull, lt, or } from "drizzle-orm";
import type { TenantContext } from "../core/tenant-context.js";
import type { Database } from "../db/database.js";
import { apiKeys } from "../db/schema.js";

/** A key's `last_used_at` is written at most once per this, per instance. */
export const KEY_USE_RESOLUTION_MS = 60_000;
/** Uses noted within this are written together, in one transaction. */
const BATCH_WINDOW_MS = 1_000;

interface Use {
  tenantId: string;
  keyId: string;
  at: number;
}

/**
 * `api_keys.last_used_at`, without a write per request (issue 18). Each instance writes a key's
 * use at most once a minute: the first use of a key in a minute is queued, and what is queued is
 * written a second later in one transaction, one statement per tenant. So `last_used_at` is the
 * start of the latest minute the key was used in, up to a minute behind its very last use.
 *
 * No timer outlives the batch, so this works where the process does not stay (a Worker): the
 * batch is handed to `keepAlive` (waitUntil there). The write never moves `last_used_at` back, so
 * instances writing out of order agree; it does not fire the key change feed (drizzle/0016), so
 * no instance drops its verified keys for it. It is written by the platform role: a tenant
 * cannot set it. A failed write is logged and dropped; the next minute's use writes again.
 */
export class KeyUseRecorder {
  /** When each key's use was last queued here: within KEY_USE_RESOLUTION_MS, a use writes nothing. */
  private readonly queuedAt = new Map<string, number>();
  private readonly pending = new Map<string, Use>();
  private batch: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    private readonly onError: (error: unknown) => void,
    private readonly keepAlive: (work: Promise<void>) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  note(ctx: TenantContext): void {
    const at = this.now();
    const last = this.queuedAt.get(ctx.keyId);
    if (last !== undefined && at - last < KEY_USE_RESOLUTION_MS) return;
    this.queuedAt.set(ctx.keyId, at);
    this.pending.set(ctx.keyId, { tenantId: ctx.tenantId, keyId: ctx.keyId, at });
    if (!this.batch) {
      // Unref'd: a batch never holds a stopping process open (it is flushed on close instead).
      this.batch = new Promise<void>((resolve) => setTimeout(resolve, BATCH_WINDOW_MS).unref?.()).then(() => this.flush());
      this.keepAlive(this.batch);
    }
  }

  /** Writes what is queued now (a read of the tenant's keys calls it first, to show its own use). */
  async flush(): Promise<void> {
    this.batch = undefined;
    const uses = [...this.pending.values()];
    this.pending.clear();
    this.forgetOlderThan(this.now() - KEY_USE_RESOLUTION_MS);
    if (uses.length === 0) return;
    const byTenant = new Map<string, Use[]>();
    for (const use of uses) byTenant.set(use.tenantId, [...(byTenant.get(use.tenantId) ?? []), use]);
    try {
      await this.db.asPlatformAdmin("record-key-use", async (tx) => {
        // One statement per tenant: each stays on its tenant's shard on Citus.
        for (const [tenantId, tenantUses] of byTenant) {
          const at = new Date(Math.max(...tenantUses.map((use) => use.at)));
          await tx
            .update(apiKeys)
            .set({ lastUsedAt: at })
            .where(
              and(
                eq(apiKeys.tenantId, tenantId),
                inArray(
                  apiKeys.id,
                  tenantUses.map((use) => use.keyId),
                ),
                or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, at)),
              ),
            );
        }
      });
    } catch (error) {
      this.onError(error);
    }
  }

  /** Keeps the map to the keys used within the last minute. */
  private forgetOlderThan(cutoff: number): void {
    for (const [keyId, at] of this.queuedAt) if (at < cutoff) this.queuedAt.delete(keyId);
  }
}
