import type { Context, MiddlewareHandler } from "hono";
import type { Database } from "../../db/database.js";
import { limitReasonOf } from "../../core/error-catalogue.js";
import { RateLimitedError, UnauthorizedError } from "../../core/errors.js";
import type { SecurityEvents } from "../../observability/security-events.js";
import { bearerToken, hashApiKey } from "../../tenancy/api-keys.js";
import { authenticateTenantRequest, type KeyLookups } from "../../tenancy/authenticate.js";
import type { FailedAuthLimiter } from "../../tenancy/failed-auth-limiter.js";
import type { KeyUseRecorder } from "../../tenancy/key-use.js";
import type { AppEnv } from "../types.js";
import { tenantLogFields } from "../access-log.js";
import { clientAddress } from "./request-context.js";

const SMUGGLING_NAMES = new Set(["tenant_id", "tenantid", "tenant", "x-tenant-id", "x-tenant"]);

function isTenantField(name: string): boolean {
  return SMUGGLING_NAMES.has(name.toLowerCase());
}

/** Top-level keys of a JSON body. Hono caches the parsed body, so the validator does not re-read it. */
async function jsonBodyKeys(c: Context<AppEnv>): Promise<string[]> {
  if (!/^application\/json/i.test(c.req.header("content-type") ?? "")) return [];
  try {
    const body: unknown = await c.req.json();
    return body && typeof body === "object" && !Array.isArray(body) ? Object.keys(body) : [];
  } catch {
    return []; // malformed JSON is the validator's to report
  }
}

/**
 * Tenant routes: the TenantContext comes from the verified key only (I1). A tenant id offered in
 * the query string, a header or a JSON body is ignored (bodies are parsed by schemas that drop
 * unknown fields) — and reported, since an honest client never sends one. A revoked key gets the
 * same 401 as an unknown one, and is reported too: whoever holds it should not.
 *
 * Hostile keys are cheap to refuse: unknown ones never reach the database (the key directory),
 * known ones are verified from memory (the verified-key cache), and an address that fails too
 * often gets 429 with Retry-After before its key is even looked at.
 */
export interface TenantAuthGuards extends KeyLookups {
  failedAuth?: FailedAuthLimiter | undefined;
  /** Told of every request no limit refused: keeps `last_used_at` without a write per request. */
  keyUse?: KeyUseRecorder | undefined;
}

export function tenantAuth(db: Database, securityEvents: SecurityEvents, guards: TenantAuthGuards = {}): MiddlewareHandler<AppEnv> {
  return async function tenantAuthMiddleware(c, next) {
    // No address (a runtime that does not say): nothing to attribute failures to, so no limit.
    const address = clientAddress(c, securityEvents.trustedProxyHops);
    const limiter = address !== undefined ? guards.failedAuth : undefined;
    const presentedKey = bearerToken(c.req.header("authorization"));
    // Only a key this instance does not know is held to its address's failures: a valid key is never
    // refused because others behind the same address (a NAT, a proxy) sent bad ones, and known keys
    // pay no counter read.
    if (limiter && !(presentedKey && guards.directory?.knows(hashApiKey(presentedKey)))) {
      const blockedFor = await limiter.blockedFor(address!);
      if (blockedFor !== undefined) throw new RateLimitedError("rate_limit", blockedFor);
    }
    let authenticated: Awaited<ReturnType<typeof authenticateTenantRequest>>;
    try {
      authenticated = await authenticateTenantRequest(
        db,
        presentedKey,
        c.get("requestId"),
        (revoked) =>
          securityEvents.report("revoked_key_used", {
            tenant_id: revoked.tenantId,
            key_id: revoked.keyId,
            request_id: c.get("requestId"),
            client_address: address,
          }),
        guards,
      );
    } catch (error) {
      if (error instanceof UnauthorizedError) await limiter?.noteFailure(address!);
      throw error;
    }
    const { ctx: tenant, quota } = authenticated;
    c.set("tenant", tenant);
    c.set("quota", quota);
    c.set("log", c.get("log").child(tenantLogFields(tenant)));
    await next();
    // After the request, and not for one a limit refused: reading a refused request's body would
    // cost more than refusing it (issue 16). The report is a signal; the schemas drop the field anyway.
    if (limitReasonOf(c.error)) return;
    // A use of the key is what a limit let through: a refusal writes nothing, not even a minute later.
    guards.keyUse?.note(tenant);
    const smuggled = [
      ...Object.keys(c.req.query()).filter(isTenantField).map((k) => `query.${k}`),
      ...Object.keys(c.req.header()).filter(isTenantField).map((h) => `header.${h}`),
      ...(await jsonBodyKeys(c)).filter(isTenantField).map((k) => `body.${k}`),
    ];
    if (smuggled.length > 0) {
      securityEvents.report("smuggled_tenant_id", {
        tenant_id: tenant.tenantId,
        key_id: tenant.keyId,
        request_id: tenant.requestId,
        fields: smuggled,
      });
    }
  };
}
