import type { Logger } from "../observability/logger.js";
import type { TenantQuota } from "../tenancy/authenticate.js";
import type { TenantContext } from "../tenancy/tenant-context.js";

/** Variables every handler can read with `c.get(…)`; set once by middleware. */
export interface AppVariables {
  requestId: string;
  log: Logger;
  tenant: TenantContext;
  quota: TenantQuota;
}

export interface AppEnv {
  Variables: AppVariables;
}
