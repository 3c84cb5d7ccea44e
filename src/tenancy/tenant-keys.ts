import { and, desc, eq, isNull, sql } from "drizzle-orm";
import { recordAuditEvent } from "../audit/audit-log.js";
import { InsufficientScopeError, NotFoundError, ValidationError } from "../core/errors.js";
import { covers, isScope } from "../core/scopes.js";
import { isUuid, type TenantContext } from "../core/tenant-context.js";
import type { ChangeSink } from "../db/change-feed.js";
import type { Database, TenantScope } from "../db/database.js";
import { announceKeyChange } from "../db/key-changes.js";
import { apiKeys, plans, tenants, type ApiKeyRow, type PlanRow } from "../db/schema.js";
import { generateApiKey } from "./api-keys.js";
import type { KeyDirectory } from "./key-directory.js";
import type { KeyUseRecorder } from "./key-use.js";
import { insertKey, revokeKeyAndItsKeys, viewOfKey, type IssuedKey, type KeyRequest, type KeyView } from "./key-records.js";
import { limitsWithin, type KeyLimits } from "./key-limits.js";

/** What PATCH /v1/keys/:id may change; what it leaves out stays. Null clears a limit or the description. */
export type KeyChanges = Partial<KeyLimits> & { name?: string | undefined; description?: string | null | undefined };

/** The longest an old secret may keep working after a rotation, and how long it does unless told. */
export const MAX_ROTATION_GRACE_SECONDS = 24 * 60 * 60;
export const DEFAULT_ROTATION_GRACE_SECONDS = 60 * 60;

/**
 * A tenant's keys, managed by the tenant itself with an `owner` key (issue 18): POST/GET /v1/keys,
 * DELETE /v1/keys/:id, POST /v1/keys/:id/rotate. Every query runs in `withTenant` as fence_app —
 * row-level security on api_keys (drizzle/0015) as well as the explicit tenant predicate — so
 * an owner can never see or touch another tenant's keys, whatever id it names. Every change is
 * audited in its own transaction.
 *
 * A key can never hold more than the key that made it: no scope it lacks, no later expiry, no
 * higher requests/min of its own (a key without its own limit is bound by its creator's). Revoking
 * a key revokes the keys it made (key-records.ts).
 */
export class TenantKeys {
  constructor(
    private readonly db: Database,
    private readonly keyDirectory?: KeyDirectory,
    private readonly verifiedKeys?: ChangeSink,
    /** This instance's queued key uses, written before a list so the owner sees its own use. */
    private readonly keyUse?: KeyUseRecorder,
  ) {}

  async create(ctx: TenantContext, request: KeyRequest): Promise<IssuedKey> {
    const { issued, hash } = await this.db.withTenant(ctx, async (scope) => {
      const creator = await this.actingKey(scope);
      const plan = await planOf(scope);
      const bounded = { ...withinCreator(creator, request), ...limitsWithin(creator, plan, request, { inherit: true }) };
      return insertKey(scope.tx, ctx.tenantId, bounded as KeyRequest, { keyId: creator.id, requestId: ctx.requestId });
    });
    this.keyDirectory?.add(hash);
    return issued;
  }

  /** The tenant's keys, newest first; revoked ones only when asked for. */
  async list(ctx: TenantContext, options: { includeRevoked: boolean }): Promise<KeyView[]> {
    await this.keyUse?.flush();
    const rows = await this.db.withTenant(ctx, (scope) =>
      scope.tx
        .select()
        .from(apiKeys)
        .where(and(scope.owns(apiKeys.tenantId), options.includeRevoked ? undefined : isNull(apiKeys.revokedAt)))
        .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id)),
    );
    return rows.map(viewOfKey);
  }

  /** Revokes the key and the keys it made; another tenant's key id answers like a made-up one (I6). */
  async revoke(ctx: TenantContext, keyId: string): Promise<void> {
    if (!isUuid(keyId)) throw new NotFoundError("API key");
    const revoked = await this.db.withTenant(ctx, (scope) =>
      revokeKeyAndItsKeys(scope.tx, scope.owns(apiKeys.tenantId), ctx.tenantId, keyId, { keyId: ctx.keyId, requestId: ctx.requestId }),
    );
    if (revoked.length === 0) throw new NotFoundError("API key");
    this.verifiedKeys?.forget(`tenant:${ctx.tenantId}`);
  }

  /**
   * A new secret for the key, which keeps its id, scopes, limits and trail; the secret it replaces
   * still authenticates for `graceSeconds` (0: not at all), and a secret an earlier rotation
   * replaced stops at once. A revoked or expired key is not rotated (404, 400).
   */
  async rotate(ctx: TenantContext, keyId: string, graceSeconds: number): Promise<IssuedKey> {
    if (!isUuid(keyId)) throw new NotFoundError("API key");
    if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_ROTATION_GRACE_SECONDS) {
      throw new ValidationError(`Invalid request: grace_seconds: must be a whole number from 0 to ${MAX_ROTATION_GRACE_SECONDS}`);
    }
    const { issued, hash } = await this.db.withTenant(ctx, async (scope) => {
      const before = await liveKeyToChange(scope, keyId);
      if (before.expiresAt && before.expiresAt.getTime() <= Date.now()) throw new ValidationError("The API key has expired; an expired key is not rotated. Make a new one.");
      const generated = generateApiKey(before.environment as IssuedKey["environment"]);
      const [after] = await scope.tx
        .update(apiKeys)
        .set({
          keyHash: generated.hash,
          prefix: generated.prefix,
          // Read in the statement: the column's value before this update, i.e. the secret being replaced.
          priorKeyHash: sql`${apiKeys.keyHash}`,
          priorKeyExpiresAt: sql`now() + make_interval(secs => ${graceSeconds})`,
          secretSetAt: sql`now()`,
        })
        .where(and(scope.owns(apiKeys.tenantId), eq(apiKeys.id, keyId)))
        .returning();
      const view = viewOfKey(after!);
      await recordAuditEvent(scope.tx, { tenantId: ctx.tenantId, actorKeyId: ctx.keyId, requestId: ctx.requestId, action: "key.rotated", targetId: keyId, before: viewOfKey(before), after: view });
      await announceKeyChange(scope.tx, `tenant:${ctx.tenantId}`);
      return { issued: { ...view, key: generated.key }, hash: generated.hash };
    });
    this.keyDirectory?.add(hash);
    this.verifiedKeys?.forget(`tenant:${ctx.tenantId}`);
    return issued;
  }

  /**
   * Changes a key's name, description or limits of its own; limits stay within the acting key's
   * own and the plan (key-limits.ts), so an owner key cannot raise itself either. A revoked key,
   * or another tenant's, answers 404.
   */
  async update(ctx: TenantContext, keyId: string, changes: KeyChanges): Promise<KeyView> {
    if (!isUuid(keyId)) throw new NotFoundError("API key");
    const view = await this.db.withTenant(ctx, async (scope) => {
      const actor = await this.actingKey(scope);
      const plan = await planOf(scope);
      const limits = limitsWithin(actor, plan, changes, { inherit: false });
      const before = await liveKeyToChange(scope, keyId);
      const [after] = await scope.tx
        .update(apiKeys)
        .set({
          name: changes.name,
          description: changes.description,
          requestsPerMinute: limits.requests_per_minute,
          tokensPerMonth: limits.tokens_per_month,
          spendPerMonthMicros: limits.spend_per_month_micros,
        })
        .where(and(scope.owns(apiKeys.tenantId), eq(apiKeys.id, keyId)))
        .returning();
      const updated = viewOfKey(after!);
      await recordAuditEvent(scope.tx, { tenantId: ctx.tenantId, actorKeyId: ctx.keyId, requestId: ctx.requestId, action: "key.updated", targetId: keyId, before: viewOfKey(before), after: updated });
      await announceKeyChange(scope.tx, `tenant:${ctx.tenantId}`);
      return updated;
    });
    this.verifiedKeys?.forget(`tenant:${ctx.tenantId}`);
    return view;
  }

  /** The key making the request, as stored now (its scopes, expiry and limits bound what it gives). */
  private async actingKey(scope: TenantScope): Promise<ApiKeyRow> {
    const [creator] = await scope.tx
      .select()
      .from(apiKeys)
      .where(and(scope.owns(apiKeys.tenantId), eq(apiKeys.id, scope.ctx.keyId), isNull(apiKeys.revokedAt)));
    // Revoked since it was verified (a revocation racing this request): it makes nothing.
    if (!creator) throw new NotFoundError("API key");
    return creator;
  }
}

/**
 * The request's scopes and expiry, bounded by its creator: scopes it lacks are refused (403,
 * naming the first), a later expiry is refused (400), and an expiry left out is inherited. Its
 * limits are bounded by limitsWithin.
 */
function withinCreator(creator: ApiKeyRow, request: KeyRequest): KeyRequest {
  const held = creator.scopes.filter(isScope);
  const wanted = request.scopes ?? ["owner"];
  if (!covers(held, wanted)) throw new InsufficientScopeError(wanted.find((scope) => !covers(held, [scope]))!);
  let expiresAt = request.expires_at;
  if (creator.expiresAt) {
    if (expiresAt && new Date(expiresAt) > creator.expiresAt) {
      throw new ValidationError(`Invalid request: expires_at: must not be later than the expiry of the key making it (${creator.expiresAt.toISOString()})`);
    }
    expiresAt ??= creator.expiresAt.toISOString();
  }
  return { ...request, scopes: wanted, expires_at: expiresAt };
}

/** A key of the tenant that is not revoked, locked for the change; another tenant's or a revoked one is 404 like a made-up id (I6). */
async function liveKeyToChange(scope: TenantScope, keyId: string): Promise<ApiKeyRow> {
  const [row] = await scope.tx
    .select()
    .from(apiKeys)
    .where(and(scope.owns(apiKeys.tenantId), eq(apiKeys.id, keyId), isNull(apiKeys.revokedAt)))
    .for("update");
  if (!row) throw new NotFoundError("API key");
  return row;
}

/** The calling tenant's plan, as stored now: key limits must stay within it. */
async function planOf(scope: TenantScope): Promise<PlanRow> {
  const [row] = await scope.tx
    .select({ plan: plans })
    .from(tenants)
    .innerJoin(plans, eq(plans.name, tenants.plan))
    .where(scope.owns(tenants.id));
  // The tenant was purged after the key was verified: the key no longer authenticates.
  if (!row) throw new NotFoundError("API key");
  return row.plan;
}
