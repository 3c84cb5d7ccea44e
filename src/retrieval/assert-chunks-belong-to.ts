import { TenantIsolationError } from "../core/errors.js";
import type { SecurityEvents } from "../observability/security-events.js";
import type { TenantContext } from "../core/tenant-context.js";

/**
 * Invariant I4: the last check before retrieved text leaves the data layer. Every chunk must carry
 * the request's tenant id; one that does not means a lock upstream failed, so the whole request is
 * aborted (not just the chunk dropped), a security event is logged and counted.
 */
export function assertChunksBelongTo<T extends { tenantId: string; chunkId: string }>(
  ctx: TenantContext,
  items: readonly T[],
  securityEvents: SecurityEvents,
): readonly T[] {
  const foreign = items.filter((item) => item.tenantId !== ctx.tenantId);
  if (foreign.length > 0) {
    securityEvents.report("assembly_assertion_failed", {
      tenant_id: ctx.tenantId,
      request_id: ctx.requestId,
      key_id: ctx.keyId,
      foreign_chunk_ids: foreign.map((f) => f.chunkId),
    });
    throw new TenantIsolationError("Retrieved content failed the tenant ownership check; request aborted.");
  }
  return items;
}
