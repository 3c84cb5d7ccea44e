import type { LimitReason } from "../core/error-catalogue.js";
import type { Seat } from "../flow/fair-seats.js";
import type { Logger } from "../observability/logger.js";
import type { TenantQuota } from "../tenancy/tenant-quota.js";
import type { TenantContext } from "../core/tenant-context.js";

/**
 * What a request did, filled in by whichever layer knows (the error handler, admission, a route)
 * and read once when the response is done: by the access log and by the metrics. Holds ids,
 * counts and codes only — never text from a request or a document.
 */
export interface RequestOutcome {
  /** The error code of a refused or failed request (`rate_limited`, `budget_exceeded`, …). */
  errorCode?: string;
  /** Which limit refused it (`rate_limit`, `budget_exceeded`, …: the error catalogue's reasons). */
  limitReason?: LimitReason;
  /** The model that answered, and the tokens it used (chat). */
  model?: string;
  promptTokens?: number;
  completionTokens?: number;
  /** The budget moved the answer to the fallback model (a limit decision that did not refuse). */
  modelDowngraded?: boolean;
  /** Whether the answer (or search) came from a cache. */
  cache?: "hit" | "miss";
  /** Refused from this instance's record of a used-up window (known-refusals.ts), before authentication. */
  refusedOnRecord?: boolean;
}

/** Variables every handler can read with `c.get(…)`; set once by middleware. */
export interface AppVariables {
  requestId: string;
  log: Logger;
  tenant: TenantContext;
  quota: TenantQuota;
  outcome: RequestOutcome;
  /** The request's large-body place (http/middleware/request-body.ts), if its body is large. */
  bodyPlace: Seat | undefined;
}

export interface AppEnv {
  Variables: AppVariables;
}
