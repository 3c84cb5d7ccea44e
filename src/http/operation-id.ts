import { createHash, randomUUID } from "node:crypto";
import type { Context } from "hono";
import { ValidationError } from "../errors.js";

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
