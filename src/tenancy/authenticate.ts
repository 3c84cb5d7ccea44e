import { and, eq, gt, isNull, or, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { apiKeys, plans, tenants } from "../db/schema.js";
import { KeyExpiredError, TenantSuspendedError, UnauthorizedError, withoutStack } from "../core/errors.js";
import type { Scope } from "../core/scopes.js";
import { hashApiKey, looksLikeApiKey } from "./api-keys.js";
import type { KeyDirectory } from "./key-directory.js";
import type { TenantQuota } from "./tenant-quota.js";
import type { VerifiedKey, VerifiedKeyCache } from "./verified-key-cache.js";
import { issueTenantContext, type KeyEnvironment, type TenantContext } from "../core/tenant-context.js";

/** The key that was presented is a real one, but revoked: who it belonged to (never the key). */
export interface RevokedKeyUse {
  tenantId: string;
  keyId: string;
}

/** What authentication consults besides the database; each is optional (tests, Workers). */
export interface KeyLookups {
  /** Refuses keys whose hash no key has, without a transaction. */
  directory?: KeyDirectory | undefined;
  /** Verified keys kept in memory, dropped by the change feed. */
  cache?: VerifiedKeyCache | undefined;
}

/**
 * Verifies a tenant API key and returns the request's TenantContext (invariant I1: the tenant comes
 * from here and nowhere else). Missing, malformed, unknown and revoked keys all fail with the same
 * UnauthorizedError, so the answer reveals nothing about which it was.
 *
 * The key's row decides. With a `cache`, the row may come from memory: a copy the change feed
 * drops when the key, its tenant or its plan changes (see VerifiedKeyCache for the bound), so a
 * request — admitted or refused — costs no database round trip in the common case. With a
 * `directory`, a key whose hash no key has is refused before any database work.
 *
 * A secret replaced by a rotation works until the grace period the owner chose ends, then answers
 * like an expired key. A revoked key is told apart only for `onRevokedKey` (a security event). The tenant's cache
 * secret is read with the row, so cache entries are keyed with the tenant's current secret.
 *
 * A key of a suspended tenant (TenantAdmin.suspendTenant) fails with TenantSuspendedError (403),
 * checked last: only a key that would otherwise authenticate learns that its tenant is suspended,
 * so a revoked or expired one answers exactly as before and the 403 tells a guesser nothing.
 */
export async function authenticateTenantRequest(
  db: Database,
  presentedKey: string | undefined,
  requestId: string,
  onRevokedKey?: (use: RevokedKeyUse) => void,
  lookups: KeyLookups = {},
): Promise<{ ctx: TenantContext; quota: TenantQuota }> {
  if (!presentedKey || !looksLikeApiKey(presentedKey)) throw new UnauthorizedError();
  return authenticateKeyHash(db, hashApiKey(presentedKey), requestId, onRevokedKey, lookups);
}

/**
 * The same verification from a key's SHA-256 hash: what a console session holds instead of the
 * key (console/session.ts), so revoking, expiring or rotating the key ends the session at its next
 * request exactly as it refuses the key.
 */
export async function authenticateKeyHash(
  db: Database,
  keyHash: string,
  requestId: string,
  onRevokedKey?: (use: RevokedKeyUse) => void,
  lookups: KeyLookups = {},
): Promise<{ ctx: TenantContext; quota: TenantQuota }> {
  const { directory, cache } = lookups;
  const read = async () => {
    if (directory && !(await directory.mayExist(keyHash))) return undefined;
    return readVerifiedKey(db, keyHash);
  };
  const key = cache ? await cache.lookup(keyHash, read) : await read();
  if (!key) throw new UnauthorizedError();
  if (key.revoked) {
    onRevokedKey?.({ tenantId: key.tenantId, keyId: key.keyId });
    throw new UnauthorizedError();
  }
  if (key.expiresAt !== null && key.expiresAt <= Date.now()) throw new KeyExpiredError();
  if (key.graceEndsAt !== null && key.graceEndsAt <= Date.now()) throw new KeyExpiredError("rotated");
  // Without a stack: a suspended tenant's clients may keep sending, and each refusal is answered
  // from the cached key, so it must cost no more than the 401 of a revoked one.
  if (key.suspended) throw withoutStack(() => new TenantSuspendedError());
  return { ctx: tenantContextOf(key, requestId), quota: key.quota };
}

/** The request's TenantContext from a verified key (never from anything the client sent: I1). */
export function tenantContextOf(key: VerifiedKey, requestId: string): TenantContext {
  return issueTenantContext({
    tenantId: key.tenantId,
    keyId: key.keyId,
    project: key.project,
    environment: key.environment,
    scopes: key.scopes,
    requestId,
    cacheSecret: key.cacheSecret,
  });
}

/** The key's row with its tenant's cache secret, suspension and its plan's admission numbers, in one query. */
async function readVerifiedKey(db: Database, keyHash: string): Promise<VerifiedKey | undefined> {
  const [row] = await db.asPlatformAdmin("authenticate-key", (tx) =>
    tx
      .select({
        tenantId: apiKeys.tenantId,
        keyId: apiKeys.id,
        project: apiKeys.project,
        environment: apiKeys.environment,
        scopes: apiKeys.scopes,
        expiresAt: apiKeys.expiresAt,
        plan: plans.name,
        requestsPerMinute: plans.requestsPerMinute,
        tokensPerMinute: plans.tokensPerMinute,
        maxConcurrency: plans.maxConcurrency,
        weight: plans.schedulingWeight,
        keyRequestsPerMinute: apiKeys.requestsPerMinute,
        revokedAt: apiKeys.revokedAt,
        cacheSecret: tenants.cacheSecret,
        suspendedAt: tenants.suspendedAt,
        currentSecret: sql<boolean>`${apiKeys.keyHash} = ${keyHash}`,
        priorKeyExpiresAt: apiKeys.priorKeyExpiresAt,
      })
      .from(apiKeys)
      .innerJoin(tenants, eq(tenants.id, apiKeys.tenantId))
      .innerJoin(plans, eq(plans.name, tenants.plan))
      // The key's secret, or the one its last rotation replaced (valid through the grace period).
      .where(or(eq(apiKeys.keyHash, keyHash), eq(apiKeys.priorKeyHash, keyHash)))
      .limit(1),
  );
  if (!row) return undefined;
  return {
    tenantId: row.tenantId,
    keyId: row.keyId,
    project: row.project,
    environment: row.environment as KeyEnvironment,
    scopes: row.scopes as Scope[],
    expiresAt: row.expiresAt?.getTime() ?? null,
    graceEndsAt: row.currentSecret ? null : (row.priorKeyExpiresAt?.getTime() ?? 0),
    cacheSecret: row.cacheSecret,
    revoked: row.revokedAt !== null,
    suspended: row.suspendedAt !== null,
    quota: {
      plan: row.plan,
      requestsPerMinute: row.requestsPerMinute,
      tokensPerMinute: row.tokensPerMinute,
      maxConcurrency: row.maxConcurrency,
      keyRequestsPerMinute: row.keyRequestsPerMinute,
      weight: row.weight,
    },
  };
}

export async function authenticateTenantKey(
  db: Database,
  presentedKey: string | undefined,
  requestId: string,
): Promise<TenantContext> {
  return (await authenticateTenantRequest(db, presentedKey, requestId)).ctx;
}

/**
 * The identity a queued job runs with: the tenant and key that submitted it, re-checked when the
 * job starts. A job whose key has since been revoked or has expired (or whose tenant is gone) gets no context and
 * does not run — revoking a key stops the work it queued, not only its next request.
 */
export async function resumeJobIdentity(
  db: Database,
  job: { id: string; tenantId: string; keyId: string },
): Promise<TenantContext | undefined> {
  const [row] = await db.asPlatformAdmin("resume-job-identity", (tx) =>
    tx
      .select({ project: apiKeys.project, environment: apiKeys.environment, scopes: apiKeys.scopes, cacheSecret: tenants.cacheSecret })
      .from(apiKeys)
      .innerJoin(tenants, eq(tenants.id, apiKeys.tenantId))
      .where(
        and(
          eq(apiKeys.tenantId, job.tenantId),
          eq(apiKeys.id, job.keyId),
          isNull(apiKeys.revokedAt),
          or(isNull(apiKeys.expiresAt), gt(apiKeys.expiresAt, sql`now()`)),
        ),
      )
      .limit(1),
  );
  if (!row) return undefined;
  return issueTenantContext({
    tenantId: job.tenantId,
    keyId: job.keyId,
    project: row.project,
    environment: row.environment as KeyEnvironment,
    scopes: row.scopes as Scope[],
    requestId: `job:${job.id}`,
    cacheSecret: row.cacheSecret,
  });
}
