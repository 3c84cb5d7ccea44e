import type { MiddlewareHandler } from "hono";
import type { RunRecords } from "../../runs/run-records.js";
import { tenantContextOf } from "../../tenancy/authenticate.js";
import type { TenantContext } from "../../core/tenant-context.js";
import type { RefusalOnRecord, RefusalsOnRecord } from "../refusals-on-record.js";
import type { AppEnv } from "../types.js";
import { clientAddress } from "./request-context.js";
import { refusalRunKind } from "./run-refusals.js";

/**
 * A request this instance can refuse from memory (RefusalsOnRecord: a used-up window of a known
 * key, or an unknown key from an address blocked for failed authentications) is answered 429 here
 * — before its body is looked at, its tenant middleware runs or a counter is touched. The answer is
 * the one admission or authentication would give (same error, headers and body), counted the same
 * way (metrics, sampled access log, the minute's refusal summary). On Node the front door
 * (front-door.ts) answers the same refusals earlier still, before Hono; this is the path for the
 * requests that reach the app some other way (tests, other servers).
 */
export function knownRefusals(onRecord: RefusalsOnRecord, runs: RunRecords, trustedProxyHops: number): MiddlewareHandler<AppEnv> {
  return async function knownRefusalsMiddleware(c, next) {
    if (c.req.path.startsWith("/v1/admin")) return next(); // tenant keys there are 401, never 429
    const found = onRecord.find(c.req.header("authorization"), () => clientAddress(c, trustedProxyHops));
    if (!found) return next();
    // No child logger (it costs as much as the rest of the refusal): nothing logs here but the
    // access line, which adds the tenant's fields itself when it sees `refusedOnRecord`.
    c.get("outcome").refusedOnRecord = true;
    const ctx = noteRefusalOnRecord(runs, found, c.get("requestId"), c.req.method, c.req.path);
    if (ctx) c.set("tenant", ctx);
    throw found.refusal;
  };
}

/**
 * The refused tenant's context (none for a refused address), with a chat's or an upload's refusal
 * counted into the minute's refusal run: what both answering paths (here and the front door) do.
 */
export function noteRefusalOnRecord(runs: RunRecords, found: RefusalOnRecord, requestId: string, method: string, path: string): TenantContext | undefined {
  if (!found.key) return undefined;
  const ctx = tenantContextOf(found.key, requestId);
  const kind = refusalRunKind(method, path);
  if (kind) runs.noteRefusal(ctx, kind, found.refusal);
  return ctx;
}
