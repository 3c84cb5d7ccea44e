import { UnauthorizedError } from "../core/errors.js";
import { findDatabaseError } from "../observability/loggable-error.js";

/**
 * Every table a tenant owns refers to the tenant's row by a foreign key that drizzle names
 * `<table>_tenant_id_tenants_id_fk` (drizzle/*.sql; on Citus a worker names its shard's copy with
 * the shard's number after it): a write that breaks one of them found the tenant's row gone.
 */
const TENANT_FOREIGN_KEY = /_tenant_id_tenants_id_fk(_\d+)?$/;

/**
 * True when a statement failed because the tenant it ran for was deleted while it ran: a request
 * authenticated a moment before an admin's purge, or a job of the tenant, wrote a row that refers
 * to the tenant's row, which the purge had removed (23503 on one of the tenant foreign keys).
 */
export function isTenantRowGone(error: unknown): boolean {
  const found = findDatabaseError(error);
  if (found?.code !== "23503") return false;
  // Citus relays a worker's error without its constraint field; the message still names it.
  const constraint = found.constraint ?? (typeof found.message === "string" ? FOREIGN_KEY_IN_MESSAGE.exec(found.message)?.[1] : undefined);
  return typeof constraint === "string" && TENANT_FOREIGN_KEY.test(constraint);
}

const FOREIGN_KEY_IN_MESSAGE = /violates foreign key constraint "([^"]+)"/;

/**
 * Rethrows `error`, as the 401 its caller deserves when the tenant was deleted while it ran (its
 * key no longer authenticates), instead of a 500 for a foreign key the caller cannot know of.
 */
export function refuseIfTenantGone(error: unknown): never {
  if (isTenantRowGone(error)) throw new UnauthorizedError();
  throw error;
}
