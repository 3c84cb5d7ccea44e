import type { Context, MiddlewareHandler } from "hono";
import type { Database } from "../../db/database.js";
import type { SecurityEvents } from "../../observability/security-events.js";
import { bearerToken } from "../../tenancy/api-keys.js";
import { authenticateTenantRequest } from "../../tenancy/authenticate.js";
import type { AppEnv } from "../types.js";
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
 */
export function tenantAuth(db: Database, securityEvents: SecurityEvents): MiddlewareHandler<AppEnv> {
  return async function tenantAuthMiddleware(c, next) {
    const { ctx: tenant, quota } = await authenticateTenantRequest(
      db,
      bearerToken(c.req.header("authorization")),
      c.get("requestId"),
      (revoked) =>
        securityEvents.report("revoked_key_used", {
          tenant_id: revoked.tenantId,
          key_id: revoked.keyId,
          request_id: c.get("requestId"),
          client_address: clientAddress(c, securityEvents.trustedProxyHops),
        }),
    );
    c.set("tenant", tenant);
    c.set("quota", quota);
    c.set(
      "log",
      c.get("log").child({
        tenant_id: tenant.tenantId,
        key_id: tenant.keyId,
        project: tenant.project,
        environment: tenant.environment,
      }),
    );
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
    await next();
  };
}
