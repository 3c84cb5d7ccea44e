import type { MiddlewareHandler } from "hono";
import type { AdmissionController } from "../../limits/admission.js";
import type { RunRecords } from "../../runs/run-records.js";
import { bearerToken, hashApiKey, looksLikeApiKey } from "../../tenancy/api-keys.js";
import { tenantContextOf } from "../../tenancy/authenticate.js";
import type { VerifiedKeyCache } from "../../tenancy/verified-key-cache.js";
import type { AppEnv } from "../types.js";
import { refusalRunKind } from "./run-refusals.js";

/**
 * The cheapest refusal there is (issue 16: a tenant refused almost everything still took the
 * instance, because each refusal cost a full request). A request whose key this instance holds
 * verified, and whose tenant's or key's window this instance has seen used up until it resets
 * (AdmissionController.refusalOnRecord), is answered 429 here — before its body is looked at,
 * its tenant middleware runs or a counter is touched. The answer is the one admission would give
 * (same error, headers and body), counted the same way (metrics, sampled access log, the minute's
 * refusal summary). Anything else passes on to authentication and admission as before; the
 * verified copy is dropped by the change feed like every other (a revoked key is never refused
 * here with a 429 it could tell from a 401: revoked copies pass on).
 */
export function knownRefusals(keys: VerifiedKeyCache, admission: AdmissionController, runs: RunRecords): MiddlewareHandler<AppEnv> {
  return async function knownRefusalsMiddleware(c, next) {
    if (c.req.path.startsWith("/v1/admin")) return next(); // tenant keys there are 401, never 429
    const presented = bearerToken(c.req.header("authorization"));
    if (!presented || !looksLikeApiKey(presented)) return next();
    const key = keys.peek(hashApiKey(presented));
    if (!key || key.revoked) return next();
    const refusal = admission.refusalOnRecord(key.tenantId, key.keyId, key.quota);
    if (!refusal) return next();
    const ctx = tenantContextOf(key, c.get("requestId"));
    c.set("tenant", ctx);
    // No child logger (it costs as much as the rest of the refusal): nothing logs here but the
    // access line, which adds the tenant's fields itself when it sees `refusedOnRecord`.
    c.get("outcome").refusedOnRecord = true;
    const kind = refusalRunKind(c.req.method, c.req.path);
    if (kind) runs.noteRefusal(ctx, kind, refusal);
    throw refusal;
  };
}
