import type { MiddlewareHandler } from "hono";
import type { Database } from "../../db/database.js";
import type { SecurityEvents } from "../../observability/security-events.js";
import { bearerToken } from "../../tenancy/api-keys.js";
import { authenticateTenantKey } from "../../tenancy/authenticate.js";
import type { AppEnv } from "../types.js";

const SMUGGLING_NAMES = ["tenant_id", "tenantid", "tenant", "x-tenant-id", "x-tenant"];

/**
 * Tenant routes: the TenantContext comes from the verified key only (I1). A tenant id offered in
 * the query string or a header is ignored — and reported, since an honest client never sends one.
 */
export function tenantAuth(db: Database, securityEvents: SecurityEvents): MiddlewareHandler<AppEnv> {
  return async function tenantAuthMiddleware(c, next) {
    const tenant = await authenticateTenantKey(db, bearerToken(c.req.header("authorization")), c.get("requestId"));
    c.set("tenant", tenant);
    c.set("log", c.get("log").child({ tenant_id: tenant.tenantId, key_id: tenant.keyId }));
    const smuggled = [
      ...Object.keys(c.req.query()).filter((k) => SMUGGLING_NAMES.includes(k.toLowerCase())),
      ...Object.keys(c.req.header()).filter((h) => SMUGGLING_NAMES.includes(h.toLowerCase())),
    ];
    if (smuggled.length > 0) {
      securityEvents.report("smuggled_tenant_id", {
        tenant_id: tenant.tenantId,
        request_id: tenant.requestId,
        fields: smuggled,
      });
    }
    await next();
  };
}
