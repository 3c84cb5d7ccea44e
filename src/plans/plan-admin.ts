import { asc, eq, getTableColumns, sql } from "drizzle-orm";
import { z } from "zod";
import type { Database, Tx } from "../db/database.js";
import { plans, tenantConfigs, tenants, type PlanRow } from "../db/schema.js";
import { NotFoundError, ValidationError } from "../core/errors.js";
import { isUuid } from "../core/tenant-context.js";
import type { ChangeSink } from "../db/change-feed.js";
import { PLATFORM_TENANT_ID, recordAuditEvent } from "../audit/audit-log.js";
import { announceKeyChange } from "../db/key-changes.js";
import { FEATURE_FLAGS, TenantOverrides } from "./tenant-settings.js";

/** Plan names appear in URLs, tenant rows and logs: lower-case slugs only. */
export const PLAN_NAME = /^[a-z0-9][a-z0-9_-]{0,49}$/;

const INT4_MAX = 2_147_483_647;
/** A budget: a whole number of tokens or micro-units, or null for unlimited. */
const budget = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable();
/** A flow-control number (fits the int4 column), or null for unlimited. */
const perPlan = z.number().int().min(1).max(INT4_MAX).nullable().default(null);
const model = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .refine((v) => !v.includes("\u0000"), "must not contain NUL characters")
  .nullable()
  .default(null);

/**
 * A whole plan, as PUT sends it. The three budgets must be present (null = unlimited) so that a
 * forgotten field never turns into an unlimited budget; the rest default as the schema does.
 * Unknown fields are refused: a typo (`tokens_per_dya`) must not silently keep the old value.
 */
export const PlanSettings = z
  .object({
    tokens_per_day: budget,
    tokens_per_month: budget,
    spend_per_month_micros: budget,
    /** Null: the deployment's LLM_MODEL. */
    preferred_model: model,
    /** Null: the deployment's LLM_FALLBACK_MODEL. */
    fallback_model: model,
    downgrade_allowed: z.boolean().default(true),
    downgrade_threshold: z.number().min(0).max(1).default(0.9),
    requests_per_minute: perPlan,
    tokens_per_minute: perPlan,
    max_concurrency: perPlan,
    scheduling_weight: z.number().int().min(1).max(1000).default(1),
    /** Ingestion jobs of one tenant running at once, over all instances. */
    max_running_jobs: z.number().int().min(1).max(1000).default(1),
    /** Unfinished (queued or running) jobs of one tenant; an upload past it is refused (429 queue_full). Null: unlimited. */
    max_queued_jobs: z.number().int().min(1).max(INT4_MAX).nullable().default(1000),
    /** Bytes of the unfinished jobs' kept uploads, the same way. Null: unlimited. */
    max_queued_bytes: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).nullable().default(1024 * 1024 * 1024),
    /** Feature flags the plan leaves out (`false`); a flag not named is included. */
    features: z.partialRecord(z.enum(FEATURE_FLAGS), z.boolean()).default({}),
  })
  .strict();
export type PlanSettings = z.infer<typeof PlanSettings>;

export interface PlanJson extends PlanSettings {
  name: string;
  updated_at: string;
}

export interface TenantConfigJson {
  tenant_id: string;
  plan: string;
  overrides: TenantOverrides;
  /** Null until the first PATCH. */
  updated_at: string | null;
}

/**
 * Platform-admin editing of plans and of per-tenant configuration. Every method runs through
 * `asPlatformAdmin`. Budgets and chat read plan and overrides inside each request's transaction;
 * admission reads the plan's numbers with the key, kept in memory by the verified-key cache, so a
 * plan change applies to admission here at once and elsewhere within the change feed's bound.
 */
export class PlanAdmin {
  constructor(
    private readonly db: Database,
    /** This instance's verified keys (they carry plan numbers): dropped on commit here. */
    private readonly verifiedKeys?: ChangeSink,
  ) {}

  async list(): Promise<PlanJson[]> {
    const rows = await this.db.asPlatformAdmin("list-plans", (tx) => tx.select().from(plans).orderBy(asc(plans.name)));
    return rows.map(planJson);
  }

  async get(name: string): Promise<PlanJson> {
    const [row] = await this.db.asPlatformAdmin("get-plan", (tx) => tx.select().from(plans).where(eq(plans.name, name)));
    if (!row) throw new NotFoundError("Plan");
    return planJson(row);
  }

  /** Creates the plan or replaces every setting of it. `created` tells the two apart. */
  async put(name: string, body: unknown): Promise<{ plan: PlanJson; created: boolean }> {
    if (!PLAN_NAME.test(name)) throw fieldError("plan", "must be 1–50 lower-case letters, digits, '-' or '_'");
    const parsed = PlanSettings.safeParse(body);
    if (!parsed.success) throw zodError(parsed.error);
    const s = parsed.data;
    const values = {
      tokensPerDay: s.tokens_per_day,
      tokensPerMonth: s.tokens_per_month,
      spendPerMonthMicros: s.spend_per_month_micros,
      preferredModel: s.preferred_model,
      fallbackModel: s.fallback_model,
      downgradeAllowed: s.downgrade_allowed,
      downgradeThreshold: s.downgrade_threshold,
      requestsPerMinute: s.requests_per_minute,
      tokensPerMinute: s.tokens_per_minute,
      maxConcurrency: s.max_concurrency,
      schedulingWeight: s.scheduling_weight,
      maxRunningJobs: s.max_running_jobs,
      maxQueuedJobs: s.max_queued_jobs,
      maxQueuedBytes: s.max_queued_bytes,
      features: s.features as Record<string, boolean>,
      updatedAt: new Date(),
    };
    const [row] = await this.db.asPlatformAdmin("put-plan", async (tx) => {
      await announceKeyChange(tx, `plan:${name}`);
      const [before] = await tx.select().from(plans).where(eq(plans.name, name));
      const written = await tx
        .insert(plans)
        .values({ name, ...values })
        .onConflictDoUpdate({ target: plans.name, set: values })
        .returning({ ...getTableColumns(plans), created: sql<boolean>`(xmax = 0)` });
      const { created: _created, ...after } = written[0]!;
      await recordAuditEvent(tx, { tenantId: PLATFORM_TENANT_ID, action: "plan.put", targetId: name, before: before ? planJson(before) : null, after: planJson(after) });
      return written;
    });
    const { created, ...plan } = row!;
    this.verifiedKeys?.forget(`plan:${name}`);
    return { plan: planJson(plan), created: created === true };
  }

  async getTenantConfig(tenantId: string): Promise<TenantConfigJson> {
    return this.db.asPlatformAdmin("get-tenant-config", (tx) => readConfig(tx, tenantId));
  }

  /**
   * Applies a JSON merge patch (RFC 7396) to the tenant's overrides — nested objects such as
   * `features` merge key by key, and `null` removes a key — then validates the merged result as a
   * whole. With `plan`, the tenant also moves plan, in the same transaction: all or nothing.
   */
  async patchTenantConfig(tenantId: string, patch: Record<string, unknown>, options: { plan?: string | undefined } = {}): Promise<TenantConfigJson> {
    const config = await this.db.asPlatformAdmin("patch-tenant-config", async (tx) => {
      // Serialises concurrent patches of one tenant, so neither merge is lost.
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`fence:tenant-config:${tenantId}`}, 0))`);
      const current = await readConfig(tx, tenantId);
      if (options.plan !== undefined) await assignPlan(tx, tenantId, options.plan);
      const parsed = TenantOverrides.safeParse(mergePatch(current.overrides, patch));
      if (!parsed.success) throw zodError(parsed.error);
      const now = new Date();
      await tx
        .insert(tenantConfigs)
        .values({ tenantId, overrides: parsed.data, updatedAt: now })
        .onConflictDoUpdate({ target: tenantConfigs.tenantId, set: { overrides: parsed.data, updatedAt: now } });
      const after = await readConfig(tx, tenantId);
      await recordAuditEvent(tx, { tenantId, action: "config.patched", targetId: tenantId, before: current, after });
      return after;
    });
    if (options.plan !== undefined) this.verifiedKeys?.forget(`tenant:${tenantId}`);
    return config;
  }

  async setTenantPlan(tenantId: string, plan: string): Promise<TenantConfigJson> {
    const config = await this.db.asPlatformAdmin("set-tenant-plan", async (tx) => {
      const before = await readConfig(tx, tenantId);
      await assignPlan(tx, tenantId, plan);
      const after = await readConfig(tx, tenantId);
      await recordAuditEvent(tx, { tenantId, action: "config.plan_set", targetId: tenantId, before, after });
      return after;
    });
    this.verifiedKeys?.forget(`tenant:${tenantId}`);
    return config;
  }
}

async function readConfig(tx: Tx, tenantId: string): Promise<TenantConfigJson> {
  if (!isUuid(tenantId)) throw new NotFoundError("Tenant");
  const [row] = await tx
    .select({ plan: tenants.plan, overrides: tenantConfigs.overrides, updatedAt: tenantConfigs.updatedAt })
    .from(tenants)
    .leftJoin(tenantConfigs, eq(tenantConfigs.tenantId, tenants.id))
    .where(eq(tenants.id, tenantId));
  if (!row) throw new NotFoundError("Tenant");
  return {
    tenant_id: tenantId,
    plan: row.plan,
    overrides: (row.overrides ?? {}) as TenantOverrides,
    updated_at: row.updatedAt?.toISOString() ?? null,
  };
}

/** An unknown plan is the caller's mistake (400), not a missing resource. */
async function assignPlan(tx: Tx, tenantId: string, plan: string): Promise<void> {
  const [known] = PLAN_NAME.test(plan) ? await tx.select({ name: plans.name }).from(plans).where(eq(plans.name, plan)) : [];
  if (!known) throw fieldError("plan", `unknown plan '${plan.slice(0, 50)}'`);
  await tx.update(tenants).set({ plan }).where(eq(tenants.id, tenantId));
  await announceKeyChange(tx, `tenant:${tenantId}`);
}

/**
 * RFC 7396 JSON merge patch. Builds results with Object.fromEntries, so a `__proto__` key stays
 * an ordinary (and then refused) own key instead of replacing the object's prototype.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const merged = new Map(Object.entries(isPlainObject(target) ? target : {}));
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) merged.delete(key);
    else merged.set(key, mergePatch(merged.get(key), value));
  }
  return Object.fromEntries(merged);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function planJson(row: PlanRow): PlanJson {
  return {
    name: row.name,
    tokens_per_day: row.tokensPerDay,
    tokens_per_month: row.tokensPerMonth,
    spend_per_month_micros: row.spendPerMonthMicros,
    preferred_model: row.preferredModel,
    fallback_model: row.fallbackModel,
    downgrade_allowed: row.downgradeAllowed,
    downgrade_threshold: row.downgradeThreshold,
    requests_per_minute: row.requestsPerMinute,
    tokens_per_minute: row.tokensPerMinute,
    max_concurrency: row.maxConcurrency,
    scheduling_weight: row.schedulingWeight,
    max_running_jobs: row.maxRunningJobs,
    max_queued_jobs: row.maxQueuedJobs,
    max_queued_bytes: row.maxQueuedBytes,
    features: row.features,
    updated_at: row.updatedAt.toISOString(),
  };
}

function fieldError(field: string, message: string): ValidationError {
  return new ValidationError(`Invalid request: ${field}: ${message}`, { fields: [{ field, message }] });
}

/** The same `{fields:[{field,message}]}` details as a failed request schema. */
export function zodError(error: z.ZodError): ValidationError {
  const fields = error.issues.map((issue) => ({ field: issue.path.map(String).join(".") || "(body)", message: issue.message }));
  return new ValidationError(`Invalid request: ${fields.map((f) => `${f.field}: ${f.message}`).join("; ")}`, { fields });
}
