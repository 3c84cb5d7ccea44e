import { BeyondPlanError, ValidationError } from "../core/errors.js";
import type { ApiKeyRow, PlanRow } from "../db/schema.js";

/**
 * A key's limits of its own, besides its tenant's plan: requests per minute (admission), and
 * monthly tokens and spend (budget-guard.ts). Null: none of its own.
 */
export const KEY_LIMITS = ["requests_per_minute", "tokens_per_month", "spend_per_month_micros"] as const;
export type KeyLimit = (typeof KEY_LIMITS)[number];
export type KeyLimits = Record<KeyLimit, number | null>;

export function limitsOfKey(row: ApiKeyRow): KeyLimits {
  return { requests_per_minute: row.requestsPerMinute, tokens_per_month: row.tokensPerMonth, spend_per_month_micros: row.spendPerMonthMicros };
}

/** The plan's number each key limit must stay within (a key limit above it would never apply). */
function planLimitOf(plan: PlanRow, limit: KeyLimit): number | null {
  switch (limit) {
    case "requests_per_minute":
      return plan.requestsPerMinute;
    case "tokens_per_month":
      return plan.tokensPerMonth;
    case "spend_per_month_micros":
      return plan.spendPerMonthMicros;
  }
}

/**
 * Limits a tenant key asks for another key (making it, or editing it), bounded twice: never more
 * than the acting key's own (400, as for scopes and expiry: a key never holds more than the key
 * that gave it), and never more than the tenant's plan (403 `beyond_plan`). `requested` holds
 * what the request names; with `inherit` (a new key), what it leaves out becomes the acting key's
 * own limit, so a limited key cannot make an unlimited one by saying nothing. The platform admin
 * is not bounded and does not come here.
 */
export function limitsWithin(
  actor: ApiKeyRow,
  plan: PlanRow,
  requested: Partial<KeyLimits>,
  options: { inherit: boolean },
): Partial<KeyLimits> {
  const own = limitsOfKey(actor);
  const bounded: Partial<KeyLimits> = {};
  for (const limit of KEY_LIMITS) {
    const value = requested[limit];
    if (value === undefined) {
      if (options.inherit && own[limit] !== null) bounded[limit] = own[limit];
      continue;
    }
    const ceiling = own[limit];
    if (ceiling !== null && (value === null || value > ceiling)) {
      throw new ValidationError(`Invalid request: ${limit}: must not be more than the limit of the key making the change (${ceiling})`, {
        fields: [{ field: limit, message: `must not be more than ${ceiling}, the limit of the key making the change` }],
      });
    }
    const planned = planLimitOf(plan, limit);
    if (value !== null && planned !== null && value > planned) {
      throw new BeyondPlanError(limit, `${limit} of ${value} is more than plan '${plan.name}' gives (${planned}).`, { plan: plan.name, limit: planned });
    }
    bounded[limit] = value;
  }
  return bounded;
}
