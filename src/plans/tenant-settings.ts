import { eq, sql } from "drizzle-orm";
import { z } from "zod";
import { UnauthorizedError } from "../core/errors.js";
import type { TenantScope } from "../db/database.js";
import { maskPii } from "../observability/pii-mask.js";
import { plans, tenantConfigs, tenants, type PlanRow } from "../db/schema.js";

/**
 * Per-tenant overrides on top of the plan. Validated on write (admin API) and again on read, so a
 * hand-edited row can never inject an unexpected shape into a request.
 */
export const TenantOverrides = z
  .object({
    /** Preamble for the system prompt: the tenant's persona and tone. Never replaces the rules. */
    persona: z.string().trim().max(2000).optional(),
    answer_style: z.enum(["concise", "detailed", "bullet_points"]).optional(),
    /** `fallback` pins the tenant to the plan's fallback model. */
    model_tier: z.enum(["preferred", "fallback"]).optional(),
    /** The platform's flags for this tenant (admin API): on beyond the plan, or off. */
    features: z.record(z.string().regex(/^[a-z]+\.[a-z_]+$/), z.boolean()).optional(),
    /**
     * The tenant owner's own flags (PATCH /v1/settings), kept apart from the platform's so that
     * neither overwrites the other: the owner switches off what it likes, and on only what the
     * platform allows (`platformAllows`); the admin's `false` holds whatever the owner says.
     */
    owner_features: z.record(z.string().regex(/^[a-z]+\.[a-z_]+$/), z.boolean()).optional(),
    retrieval_k: z.number().int().min(1).max(50).optional(),
    /**
     * Until when the chat path logs this tenant's prompts — masked (pii-mask.ts): the question and
     * the ids of the chunks put into the context, for debugging a bad answer. Off by default; at
     * most 24 hours ahead, so a forgotten flag switches itself off.
     */
    debug_log_prompts_until: z.iso
      .datetime({ offset: true })
      .refine((until) => Date.parse(until) <= Date.now() + PROMPT_LOGGING_MAX_MS + CLOCK_SKEW_MS, {
        message: "must be at most 24 hours from now",
      })
      .optional(),
  })
  .strict();
export type TenantOverrides = z.infer<typeof TenantOverrides>;

/** The longest a tenant's prompt logging can be switched on for. */
export const PROMPT_LOGGING_MAX_MS = 24 * 60 * 60 * 1000;
/**
 * Overrides are validated again when read, possibly on an instance whose clock is a little behind
 * the one that accepted the write; without this allowance, its reading would fail validation.
 */
const CLOCK_SKEW_MS = 60_000;

/** Whether the tenant's prompts are to be logged (masked) right now. */
export function promptLoggingActive(overrides: TenantOverrides, now = Date.now()): boolean {
  const until = overrides.debug_log_prompts_until;
  return until !== undefined && now < Date.parse(until);
}

/**
 * The log record of a prompt under `debug_log_prompts_until`: the question masked, and the context
 * by chunk id only — never a chunk's text.
 */
export function promptLogRecord(question: string, chunkIds: readonly string[]): Record<string, unknown> {
  return { debug_prompt: true, masked_question: maskPii(question), context_chunk_ids: [...chunkIds] };
}

/**
 * Feature flags default to on. A plan may leave one out (plans.features); the platform admin may
 * switch one on beyond the plan or off for a tenant (overrides.features); within what those two
 * allow, the tenant's owner switches flags off and on again (overrides.owner_features).
 */
export const FEATURE_FLAGS = ["chat.streaming", "chat.llm", "ingest.pdf"] as const;
export type FeatureFlag = (typeof FEATURE_FLAGS)[number];

export function planIncludes(plan: PlanRow, flag: FeatureFlag): boolean {
  return plan.features[flag] ?? true;
}

export interface TenantSettings {
  plan: PlanRow;
  overrides: TenantOverrides;
}

/** Whether the plan and the platform admin let the tenant have the flag on. */
export function platformAllows(settings: TenantSettings, flag: FeatureFlag): boolean {
  return settings.overrides.features?.[flag] ?? planIncludes(settings.plan, flag);
}

export function featureEnabled(settings: TenantSettings, flag: FeatureFlag): boolean {
  return platformAllows(settings, flag) && (settings.overrides.owner_features?.[flag] ?? true);
}

/**
 * Plan and overrides of the calling tenant, read inside its transaction at request time: an admin
 * change applies to the next request, on every instance, with no restart and no cache to expire.
 */
export async function readTenantSettings(scope: TenantScope): Promise<TenantSettings> {
  const [row] = await scope.tx
    .select({ plan: plans, overrides: tenantConfigs.overrides })
    .from(tenants)
    .innerJoin(plans, eq(plans.name, tenants.plan))
    .leftJoin(tenantConfigs, eq(tenantConfigs.tenantId, tenants.id))
    .where(sql`${scope.owns(tenants.id)}`);
  // No row: the tenant was deleted after its key was checked; the key no longer authenticates.
  if (!row) throw new UnauthorizedError();
  const parsed = TenantOverrides.safeParse(row.overrides ?? {});
  return { plan: row.plan, overrides: parsed.success ? parsed.data : {} };
}
