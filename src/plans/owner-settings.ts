import { sql } from "drizzle-orm";
import { z } from "zod";
import { recordAuditEvent } from "../audit/audit-log.js";
import { BeyondPlanError } from "../core/errors.js";
import type { TenantContext } from "../core/tenant-context.js";
import type { Database, TenantScope } from "../db/database.js";
import { tenantConfigs } from "../db/schema.js";
import { mergePatch, PlanSettings, zodError } from "./plan-admin.js";
import {
  FEATURE_FLAGS,
  featureEnabled,
  planIncludes,
  platformAllows,
  readTenantSettings,
  TenantOverrides,
  type FeatureFlag,
  type TenantSettings,
} from "./tenant-settings.js";

/**
 * Overrides only the platform admin sets: the plan and its numbers (what costs the platform), the
 * model tier, and prompt logging (what reaches the platform's logs). The owner's `features` are
 * its own flags (stored as `owner_features`, within what the platform allows), not the plan's.
 */
const PLATFORM_FIELDS = new Set<string>(["plan", "model_tier", "debug_log_prompts_until", ...Object.keys(PlanSettings.shape).filter((field) => field !== "features")]);

/** The owner's patch, before it is merged: flags known, values of the right type, nothing else. */
const OwnerPatch = z
  .object({
    persona: TenantOverrides.shape.persona.unwrap().nullable().optional(),
    answer_style: TenantOverrides.shape.answer_style.unwrap().nullable().optional(),
    retrieval_k: TenantOverrides.shape.retrieval_k.unwrap().nullable().optional(),
    features: z.partialRecord(z.enum(FEATURE_FLAGS), z.boolean().nullable()).nullable().optional(),
  })
  .strict();

export interface OwnerSettingsJson {
  plan: string;
  persona: string | null;
  answer_style: NonNullable<TenantOverrides["answer_style"]> | null;
  retrieval_k: number | null;
  /**
   * Every flag: whether it is on for the tenant now, whether its plan includes it, and whether the
   * owner may switch it on (the plan includes it or the admin granted it, and the admin did not switch it off).
   */
  features: Record<FeatureFlag, { enabled: boolean; in_plan: boolean; available: boolean }>;
  /** Null until the first change by the owner or the admin. */
  updated_at: string | null;
}

/**
 * The tenant's own settings (GET/PATCH /v1/settings, issue 18): an owner key sets its persona,
 * answer style and retrieval k, and switches feature flags off — or on, when the plan includes
 * them (or the admin granted them) and the admin has not switched them off. Its plan, budgets, limits, model tier and prompt logging stay the platform admin's (403
 * `beyond_plan`, nothing changed); per-key limits are set on the keys (PATCH /v1/keys/:id).
 *
 * The owner writes the same overrides the admin does (plans/plan-admin.ts), as fence_app under
 * the tenant_configs policy, serialised with the admin's patches by the same lock, and audited.
 */
export class OwnerSettings {
  constructor(private readonly db: Database) {}

  async get(ctx: TenantContext): Promise<OwnerSettingsJson> {
    return this.db.withTenant(ctx, async (scope) => ownerView(await readTenantSettings(scope), await updatedAt(scope)));
  }

  async patch(ctx: TenantContext, patch: Record<string, unknown>): Promise<OwnerSettingsJson> {
    const platformField = Object.keys(patch).find((field) => PLATFORM_FIELDS.has(field));
    if (platformField) {
      throw new BeyondPlanError(platformField, `'${platformField}' is set by the platform admin, not by the tenant; ask the platform to change it.`);
    }
    const parsed = OwnerPatch.safeParse(patch);
    if (!parsed.success) throw zodError(parsed.error);
    return this.db.withTenant(ctx, async (scope) => {
      await scope.tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`fence:tenant-config:${ctx.tenantId}`}, 0))`);
      const current = await readTenantSettings(scope);
      const before = ownerView(current, await updatedAt(scope));
      const { features, ...values } = parsed.data;
      for (const [flag, on] of Object.entries(features ?? {}) as [FeatureFlag, boolean | null][]) {
        if (on === true && !platformAllows(current, flag)) {
          const why = planIncludes(current.plan, flag) ? "the platform switched it off for this tenant" : `plan '${current.plan.name}' does not include it`;
          throw new BeyondPlanError(`features.${flag}`, `'${flag}' cannot be switched on: ${why}; ask the platform.`, { plan: current.plan.name });
        }
      }
      const patch = features === undefined ? values : { ...values, owner_features: features };
      const merged = TenantOverrides.safeParse(mergePatch(current.overrides, patch));
      if (!merged.success) throw zodError(merged.error);
      const now = new Date();
      await scope.tx
        .insert(tenantConfigs)
        .values({ tenantId: ctx.tenantId, overrides: merged.data, updatedAt: now })
        .onConflictDoUpdate({ target: tenantConfigs.tenantId, set: { overrides: merged.data, updatedAt: now } });
      const after = ownerView({ plan: current.plan, overrides: merged.data }, now);
      await recordAuditEvent(scope.tx, { tenantId: ctx.tenantId, actorKeyId: ctx.keyId, requestId: ctx.requestId, action: "settings.patched", targetId: ctx.tenantId, before, after });
      return after;
    });
  }
}

function ownerView(settings: TenantSettings, updated: Date | null): OwnerSettingsJson {
  const features = Object.fromEntries(
    FEATURE_FLAGS.map((flag) => [
      flag,
      { enabled: featureEnabled(settings, flag), in_plan: planIncludes(settings.plan, flag), available: platformAllows(settings, flag) },
    ]),
  ) as OwnerSettingsJson["features"];
  return {
    plan: settings.plan.name,
    persona: settings.overrides.persona ?? null,
    answer_style: settings.overrides.answer_style ?? null,
    retrieval_k: settings.overrides.retrieval_k ?? null,
    features,
    updated_at: updated?.toISOString() ?? null,
  };
}

async function updatedAt(scope: TenantScope): Promise<Date | null> {
  const [row] = await scope.tx.select({ at: tenantConfigs.updatedAt }).from(tenantConfigs).where(scope.owns(tenantConfigs.tenantId));
  return row?.at ?? null;
}
