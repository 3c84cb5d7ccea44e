import { and, eq, isNull } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { apiKeys } from "../db/schema.js";
import { UnauthorizedError } from "../errors.js";
import { hashApiKey, looksLikeApiKey } from "./api-keys.js";
import { issueTenantContext, type KeyEnvironment, type TenantContext } from "./tenant-context.js";

/**
 * Verifies a tenant API key and returns the request's TenantContext (invariant I1: the tenant comes
 * from here and nowhere else). Missing, malformed, unknown and revoked keys all fail with the same
 * UnauthorizedError, so the answer reveals nothing about which it was.
 */
export async function authenticateTenantKey(
  db: Database,
  presentedKey: string | undefined,
  requestId: string,
): Promise<TenantContext> {
  if (!presentedKey || !looksLikeApiKey(presentedKey)) throw new UnauthorizedError();
  const [row] = await db.asPlatformAdmin("authenticate-key", (tx) =>
    tx
      .select({
        tenantId: apiKeys.tenantId,
        keyId: apiKeys.id,
        project: apiKeys.project,
        environment: apiKeys.environment,
      })
      .from(apiKeys)
      .where(and(eq(apiKeys.keyHash, hashApiKey(presentedKey)), isNull(apiKeys.revokedAt)))
      .limit(1),
  );
  if (!row) throw new UnauthorizedError();
  return issueTenantContext({
    tenantId: row.tenantId,
    keyId: row.keyId,
    project: row.project,
    environment: row.environment as KeyEnvironment,
    requestId,
  });
}
