import { UnauthorizedError } from "../core/errors.js";
import { findDatabaseError } from "../observability/loggable-error.js";

/**
 * Every table a tenant owns refers to the tenant's row by a foreign key that drizzle names
 * `<table>_tenant_id_tenants_id_fk` (drizzle/*.sql): a write that breaks one of them found the
 * tenant's row gone.
 */
const TENANT_FOREIGN_KEY = /_tenant_id_tenants_id_fk$/;

/**
 * True when a statement failed because the tenant it ran for was deleted while it ran: a request
 * authenticated a moment before an admin's purge, or a job of the tenant, wrote a row that refers
 * to the tenant's row, which the purge had removed (23503 on one of the tenant foreign keys).
 */
export function isTenantRowGone(error: unknown): boolean {
  const found = findDatabaseError(error);
  return found?.code === "23503" && typeof found.constraint === "string" && TENANT_FOREIGN_KEY.test(found.constraint);
}

/**
 * Rethrows `error`, as the 401 its caller deserves when the tenant was deleted while it ran (its
 * key no longer authenticates), instead of a 500 for a foreign key the caller cannot know of.
 */
export function refuseIfTenantGone(error: unknown): never {
  if (isTenantRowGone(error)) throw new UnauthorizedError();
  throw error;
}
