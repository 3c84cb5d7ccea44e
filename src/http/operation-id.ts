import { createHash, randomUUID } from "node:crypto";
import type { Context } from "hono";
import { ValidationError } from "../core/errors.js";

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * The metering identity of a request. With an `Idempotency-Key` header it is derived from the key
 * (hashed: the key is the client's, not ours to store), so a resent request maps to the same
 * ledger events and counts once; without one, every request is a new operation. The client's
 * x-request-id is never used for this: reusing one must not make a real call free.
 */
export function operationIdOf(c: Context): string {
  const key = c.req.header("idempotency-key");
  if (key === undefined) return `op:${randomUUID()}`;
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new ValidationError("Invalid request: Idempotency-Key: 1 to 255 visible ASCII characters");
  }
  return `idem:${createHash("sha256").update(key).digest("hex").slice(0, 32)}`;
}

/**
 * The batch id of queued uploads. With an `Idempotency-Key` it is derived from the tenant and the key (as a UUID),
 * so a resent request finds the batch it made the first time instead of queueing it again.
 */
export function batchIdOf(c: Context, tenantId: string): string {
  const operationId = operationIdOf(c);
  if (!operationId.startsWith("idem:")) return randomUUID();
  // The tenant is part of it: two tenants using the same key get unrelated batch ids.
  const hex = createHash("sha256").update(`batch:${tenantId}:${operationId}`).digest("hex");
  // Shaped as an RFC 4122 version-5-style UUID (name-based), so it is a valid uuid column value.
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
