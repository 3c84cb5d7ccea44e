import { z } from "@hono/zod-openapi";
import { ADMIN_GROUP_BY, TENANT_GROUP_BY } from "../metering/usage-report.js";
import { PLAN_NAME, PlanSettings } from "../plans/plan-admin.js";
import { TenantOverrides } from "../plans/tenant-settings.js";
import { Instant } from "./schemas-dates.js";
import { refineStorableJson } from "./schemas-strings.js";

/**
 * Request and response shapes of cost isolation: plans, per-tenant configuration, showback.
 * Validation rules live with the capability (PlanSettings, TenantOverrides) and are reused here,
 * so the HTTP layer and the services can never disagree about what is valid.
 */

const Timestamp = z.string().openapi({ format: "date-time" });
const PlanName = z.string().regex(PLAN_NAME, "must be 1–50 lower-case letters, digits, '-' or '_'");

export const PlanParam = z.object({
  plan: z.string().openapi({ param: { name: "plan", in: "path" }, example: "pro" }),
});

// Every string of a settings body (model names included) obeys the shared string rule.
export const PlanBody = PlanSettings.superRefine(refineStorableJson).openapi("PlanSettings", {
  description: "Budgets in tokens (input + output) and micro-units of money (1 USD = 1,000,000); null means unlimited.",
});

export const Plan = z
  .object({
    name: z.string(),
    tokens_per_day: z.number().int().nullable(),
    tokens_per_month: z.number().int().nullable(),
    spend_per_month_micros: z.number().int().nullable(),
    preferred_model: z.string().nullable(),
    fallback_model: z.string().nullable(),
    downgrade_allowed: z.boolean(),
    downgrade_threshold: z.number(),
    requests_per_minute: z.number().int().nullable(),
    tokens_per_minute: z.number().int().nullable(),
    max_concurrency: z.number().int().nullable(),
    scheduling_weight: z.number().int(),
    max_running_jobs: z.number().int(),
    max_queued_jobs: z.number().int().nullable(),
    max_queued_bytes: z.number().int().nullable(),
    features: z.record(z.string(), z.boolean()).openapi({ description: "Feature flags the plan leaves out (false); a flag not named is included." }),
    updated_at: Timestamp,
  })
  .openapi("Plan");
export const PlanList = z.object({ plans: z.array(Plan) }).openapi("PlanList");

const overrideField = TenantOverrides.shape;

/**
 * A JSON merge patch of the overrides (`null` removes a key, `features` merges flag by flag),
 * plus `plan` to move the tenant. Fields not listed here reach the service, which validates the
 * merged overrides as a whole and refuses unknown keys.
 */
export const TenantConfigPatch = z
  .object({
    plan: PlanName.optional(),
    persona: overrideField.persona.unwrap().nullable().optional(),
    answer_style: overrideField.answer_style.unwrap().nullable().optional(),
    model_tier: overrideField.model_tier.unwrap().nullable().optional(),
    features: z.record(z.string(), z.boolean().nullable()).nullable().optional(),
    retrieval_k: overrideField.retrieval_k.unwrap().nullable().optional(),
    debug_log_prompts_until: Instant.pipe(overrideField.debug_log_prompts_until.unwrap())
      .nullable()
      .optional()
      .openapi({ description: "Log this tenant's prompts, PII-masked, until this time (at most 24 h ahead); null switches it off." }),
  })
  .catchall(z.unknown())
  // Overrides are stored as jsonb: every key and string, declared here or not, obeys the shared rule.
  .superRefine(refineStorableJson)
  .openapi("TenantConfigPatch");

export const TenantConfig = z
  .object({
    tenant_id: z.string().openapi({ format: "uuid" }),
    plan: z.string(),
    overrides: TenantOverrides,
    updated_at: Timestamp.nullable(),
  })
  .openapi("TenantConfig");

/** The shared date type; the window rules (order, 400 days) are metering/usage-range.ts's. */
const Range = {
  from: Instant.optional().openapi({ description: "Inclusive; ISO date or timestamp with zone. Default: start of the current UTC month." }),
  to: Instant.optional().openapi({ description: "Exclusive; ISO date or timestamp with zone. Default: now. At most 400 days after `from`." }),
};

export const TenantUsageQuery = z.object({ ...Range, group_by: z.enum(TENANT_GROUP_BY).default("day") });
export const AdminUsageQuery = z.object({
  ...Range,
  group_by: z.enum(ADMIN_GROUP_BY).default("tenant"),
  format: z.enum(["json", "csv"]).default("json"),
});
export const ReconciliationQuery = z.object(Range);

const Totals = {
  events: z.number().int(),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  cached_tokens: z.number().int(),
  total_tokens: z.number().int(),
  cost_micros: z.number().int(),
};

const usageReport = (groupBy: readonly [string, ...string[]], name: string) =>
  z
    .object({
      from: Timestamp,
      to: Timestamp,
      group_by: z.enum(groupBy),
      rows: z.array(z.object({ key: z.string(), tenant_name: z.string().optional(), ...Totals })),
      totals: z.object(Totals),
    })
    .openapi(name);

export const TenantUsageReport = usageReport(TENANT_GROUP_BY, "UsageReport");
export const AdminUsageReport = usageReport(ADMIN_GROUP_BY, "AdminUsageReport");

export const Reconciliation = z
  .object({
    from: Timestamp,
    to: Timestamp,
    summary: z.object({
      failed_events: z.number().int(),
      duplicated_events: z.number().int(),
      duplicates_prevented: z.number().int(),
      retries: z.number().int(),
      internal_rate_events: z.number().int(),
    }),
    failed: z.array(z.record(z.string(), z.unknown())),
    duplicates: z.array(z.record(z.string(), z.unknown())),
    retries: z.array(z.record(z.string(), z.unknown())),
    internal_rate: z.array(z.record(z.string(), z.unknown())),
  })
  .openapi("UsageReconciliation");
