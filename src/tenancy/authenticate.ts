import { and, eq, isNull } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { apiKeys, plans, tenants } from "../db/schema.js";
import { UnauthorizedError } from "../core/errors.js";
import { hashApiKey, looksLikeApiKey } from "./api-keys.js";
import type { KeyDirectory } from "./key-directory.js";
import { issueTenantContext, type KeyEnvironment, type TenantContext } from "../core/tenant-context.js";

/** The admission numbers of the tenant's plan, read with the key so admission costs no extra query. */
export interface TenantQuota {
  plan: string;
  requestsPerMinute: number | null;
  tokensPerMinute: number | null;
  maxConcurrency: number | null;
  /** The presenting key's own requests/min, if it has one (counted besides the tenant's). */
  keyRequestsPerMinute: number | null;
}

/** The key that was presented is a real one, but revoked: who it belonged to (never the key). */
export interface RevokedKeyUse {
  tenantId: string;
  keyId: string;
}

/**
 * Verifies a tenant API key and returns the request's TenantContext (invariant I1: the tenant comes
 * from here and nowhere else). Missing, malformed, unknown and revoked keys all fail with the same
 * UnauthorizedError, so the answer reveals nothing about which it was. The key row is read on every
 * request and never cached, so a revocation applies to the next request on every instance.
 *
 * A revoked key is told apart only for `onRevokedKey` (a security event): the one lookup reads the
 * row whatever its revocation, so revoked keys get the same 401 as unknown ones.
 *
 * With a `directory`, a key whose hash this instance does not know (after a refresh) is refused
 * before any database work: random keys cost no transaction each. The tenant's cache secret is read
 * with the row, so every request keys its cache entries with the secret current at that moment.
 */
export async function authenticateTenantRequest(
  db: Database,
  presentedKey: string | undefined,
  requestId: string,
  onRevokedKey?: (use: RevokedKeyUse) => void,
  directory?: KeyDirectory,
): Promise<{ ctx: TenantContext; quota: TenantQuota }> {
  if (!presentedKey || !looksLikeApiKey(presentedKey)) throw new UnauthorizedError();
  const keyHash = hashApiKey(presentedKey);
  if (directory && !(await directory.mayExist(keyHash))) throw new UnauthorizedError();
  const [row] = await db.asPlatformAdmin("authenticate-key", (tx) =>
    tx
      .select({
        tenantId: apiKeys.tenantId,
        keyId: apiKeys.id,
        project: apiKeys.project,
        environment: apiKeys.environment,
        plan: plans.name,
        requestsPerMinute: plans.requestsPerMinute,
        tokensPerMinute: plans.tokensPerMinute,
        maxConcurrency: plans.maxConcurrency,
        keyRequestsPerMinute: apiKeys.requestsPerMinute,
        revokedAt: apiKeys.revokedAt,
        cacheSecret: tenants.cacheSecret,
      })
      .from(apiKeys)
      .innerJoin(tenants, eq(tenants.id, apiKeys.tenantId))
      .innerJoin(plans, eq(plans.name, tenants.plan))
      .where(eq(apiKeys.keyHash, keyHash))
      .limit(1),
  );
  if (!row) throw new UnauthorizedError();
  if (row.revokedAt !== null) {
    onRevokedKey?.({ tenantId: row.tenantId, keyId: row.keyId });
    throw new UnauthorizedError();
  }
  const ctx = issueTenantContext({
    tenantId: row.tenantId,
    keyId: row.keyId,
    project: row.project,
    environment: row.environment as KeyEnvironment,
    requestId,
    cacheSecret: row.cacheSecret,
  });
  return {
    ctx,
    quota: {
      plan: row.plan,
      requestsPerMinute: row.requestsPerMinute,
      tokensPerMinute: row.tokensPerMinute,
      maxConcurrency: row.maxConcurrency,
      keyRequestsPerMinute: row.keyRequestsPerMinute,
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
 * job starts. A job whose key has since been revoked (or whose tenant is gone) gets no context and
 * does not run — revoking a key stops the work it queued, not only its next request.
 */
export async function resumeJobIdentity(
  db: Database,
  job: { id: string; tenantId: string; keyId: string },
): Promise<TenantContext | undefined> {
  const [row] = await db.asPlatformAdmin("resume-job-identity", (tx) =>
    tx
      .select({ project: apiKeys.project, environment: apiKeys.environment, cacheSecret: tenants.cacheSecret })
      .from(apiKeys)
      .innerJoin(tenants, eq(tenants.id, apiKeys.tenantId))
      .where(and(eq(apiKeys.tenantId, job.tenantId), eq(apiKeys.id, job.keyId), isNull(apiKeys.revokedAt)))
      .limit(1),
  );
  if (!row) return undefined;
  return issueTenantContext({
    tenantId: job.tenantId,
    keyId: job.keyId,
    project: row.project,
    environment: row.environment as KeyEnvironment,
    requestId: `job:${job.id}`,
    cacheSecret: row.cacheSecret,
  });
}
