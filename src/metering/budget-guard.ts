import { and, eq, gt, inArray, sql } from "drizzle-orm";
import type { Database, TenantScope } from "../db/database.js";
import { apiKeys, budgetReservations, usageCounters, usageEvents } from "../db/schema.js";
import { BudgetExceededError, IdempotencyConflictError } from "../core/errors.js";
import { keyMonthOf, periodsOf, recordUsage } from "./ledger.js";
import { costMicros, priceFor } from "./pricing.js";
import type { Feature, UsageRecord } from "./usage-event.js";
import { readTenantSettings, type TenantSettings } from "../plans/tenant-settings.js";
import type { TenantContext } from "../core/tenant-context.js";

/** A reservation expires so that a crashed instance cannot hold a tenant's budget forever. */
const RESERVATION_TTL_MS = 10 * 60 * 1000;

export interface BudgetStatus {
  limit: number | null;
  used: number;
  reserved: number;
  remaining: number | null;
  resets_at: string;
}

export interface BudgetSnapshot {
  plan: string;
  tokens_per_day: BudgetStatus;
  tokens_per_month: BudgetStatus;
  spend_per_month_micros: BudgetStatus;
  /** The calling key's own monthly caps (api_keys), counted by what that key's requests spent and hold. */
  key: { key_id: string; tokens_per_month: BudgetStatus; spend_per_month_micros: BudgetStatus };
}

export interface BudgetRequest {
  feature: Feature;
  /** Stable per request (derived from Idempotency-Key when given): one operation, one charge. */
  operationId: string;
  provider: string;
  /** Candidate models: the preferred one, and the fallback if downgrade is possible. */
  preferredModel: string;
  fallbackModel?: string | undefined;
  inputTokens: number;
  maxOutputTokens: number;
  /**
   * The ledger event the work is charged as, when it is not `<operationId>:<feature>`: a job's
   * attempts reserve each for themselves but charge one event. If that event is already charged,
   * the work is paid for: the cap is not checked again and nothing more is held.
   */
  chargedAs?: string | undefined;
}

export interface Hold {
  reservationId: string;
  model: string;
  downgraded: boolean;
  settings: TenantSettings;
}

/**
 * Budgets are checked before the expensive call, with a reservation rather than hope: under a
 * per-tenant advisory lock, Fence adds today's and this month's counters to the budget held by
 * requests in flight, and only then reserves the new request's estimate. Concurrent requests of
 * one tenant therefore cannot all pass the check together, on one instance or many. After the
 * call the reservation is settled to the provider's actual usage, or released on failure.
 */
/** Where settled tokens go besides the ledger: the tokens/min counter of admission. */
export interface TokenRateMeter {
  recordTokens(tenantId: string, tokens: number): Promise<void>;
}

/** Told of each newly recorded charged usage event once its transaction has committed (the metrics). */
export type UsageSink = (tenantId: string, usage: UsageRecord & { costMicros: number }) => void;

export class BudgetGuard {
  constructor(
    private readonly db: Database,
    private readonly internalRate: number,
    private readonly tokenRate?: TokenRateMeter,
    private readonly onCharged?: UsageSink,
  ) {}

  async reserve(ctx: TenantContext, request: BudgetRequest): Promise<Hold> {
    return this.db.withTenant(ctx, async (scope) => {
      await scope.tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`fence:budget:${ctx.tenantId}`}, 0))`);
      await this.refuseRepeatedOperation(scope, request);
      const settings = await readTenantSettings(scope);
      if (request.chargedAs && (await isCharged(scope, request.chargedAs))) {
        return this.hold(scope, request, { tokens: 0, cost: 0, model: request.preferredModel, downgraded: false, settings });
      }
      const snapshot = await budgetSnapshot(scope, settings);
      const tokens = request.inputTokens + request.maxOutputTokens;
      const plan = settings.plan;
      const pinnedToFallback = settings.overrides.model_tier === "fallback" && request.fallbackModel;

      const costWith = async (model: string) =>
        costMicros(await priceFor(scope.tx, request.provider, model, this.internalRate), {
          inputTokens: request.inputTokens,
          outputTokens: request.maxOutputTokens,
        });
      const preferredCost = await costWith(request.preferredModel);
      const fits = (cost: number) => exceeded(snapshot, tokens, cost) === undefined;
      const nearCap = share(snapshot, tokens, preferredCost) >= plan.downgradeThreshold;

      let model = request.preferredModel;
      let cost = preferredCost;
      let downgraded = false;
      if (request.fallbackModel && (pinnedToFallback || (plan.downgradeAllowed && (nearCap || !fits(preferredCost))))) {
        model = request.fallbackModel;
        cost = await costWith(model);
        downgraded = !pinnedToFallback;
      }
      const over = exceeded(snapshot, tokens, cost);
      if (over) throw budgetExceeded(snapshot, over);
      return this.hold(scope, request, { tokens, cost, model, downgraded, settings });
    });
  }

  private async hold(
    scope: TenantScope,
    request: BudgetRequest,
    held: { tokens: number; cost: number; model: string; downgraded: boolean; settings: TenantSettings },
  ): Promise<Hold> {
    const [row] = await scope.tx
      .insert(budgetReservations)
      .values({
        tenantId: scope.tenantId,
        requestId: request.operationId,
        keyId: scope.ctx.keyId,
        tokens: held.tokens,
        costMicros: held.cost,
        expiresAt: new Date(Date.now() + RESERVATION_TTL_MS),
      })
      .returning({ id: budgetReservations.id });
    return { reservationId: row!.id, model: held.model, downgraded: held.downgraded, settings: held.settings };
  }

  /**
   * An Idempotency-Key that already completed (or is in flight) is refused with 409 rather than run
   * again: the provider would charge a second time while the ledger, keyed by the same event id,
   * would rightly count once — and the two would disagree.
   */
  private async refuseRepeatedOperation(scope: TenantScope, request: BudgetRequest): Promise<void> {
    const done = await isCharged(scope, `${request.operationId}:${request.feature}`);
    const [inFlight] = await scope.tx
      .select({ id: budgetReservations.id })
      .from(budgetReservations)
      .where(
        and(
          scope.owns(budgetReservations.tenantId),
          eq(budgetReservations.requestId, request.operationId),
          gt(budgetReservations.expiresAt, new Date()),
        ),
      );
    if (done || inFlight) throw new IdempotencyConflictError(done ? "completed" : "in_progress");
  }

  /**
   * Records what the provider reported (charged or failed) and frees the reservation, atomically.
   * With `onlyIf` (a job attempt: does it still hold its job?), checked first in the same
   * transaction: when it answers false the reservation is freed, nothing is recorded, and settle
   * returns false — an attempt another worker took over is never charged.
   */
  async settle(
    ctx: TenantContext,
    hold: Hold,
    records: readonly UsageRecord[],
    options: { onlyIf?: ((scope: TenantScope) => Promise<boolean>) | undefined } = {},
  ): Promise<boolean> {
    const settled = await this.db.withTenant(ctx, async (scope) => {
      const allowed = options.onlyIf ? await options.onlyIf(scope) : true;
      const written = allowed ? await this.write(scope, records) : [];
      await scope.tx
        .delete(budgetReservations)
        .where(and(scope.owns(budgetReservations.tenantId), eq(budgetReservations.id, hold.reservationId)));
      return { allowed, written };
    });
    if (!settled.allowed) return false;
    this.report(ctx, settled.written);
    await this.countTokens(ctx, records);
    return true;
  }

  /** Meters usage that needs no reservation of its own (e.g. a cheap query embedding). */
  async record(ctx: TenantContext, records: readonly UsageRecord[]): Promise<void> {
    const recorded = await this.db.withTenant(ctx, (scope) => this.recordWithin(scope, records));
    await recorded.committed();
  }

  /**
   * Records usage inside the caller's tenant transaction (a search meters its query embedding in
   * its own transaction, not in one more); call `committed()` once that transaction has committed,
   * to tell the metrics and the tokens/min counter.
   */
  async recordWithin(scope: TenantScope, records: readonly UsageRecord[]): Promise<{ committed(): Promise<void> }> {
    const charged = await this.write(scope, records);
    const ctx = scope.ctx;
    return {
      committed: async () => {
        this.report(ctx, charged);
        await this.countTokens(ctx, records);
      },
    };
  }

  /** Writes the records; returns the charged ones that were new (a duplicate id is not counted twice). */
  private async write(scope: TenantScope, records: readonly UsageRecord[]): Promise<(UsageRecord & { costMicros: number })[]> {
    const charged: (UsageRecord & { costMicros: number })[] = [];
    for (const record of records) {
      const result = await recordUsage(scope, record, this.internalRate);
      if (result.inserted && record.status === "charged") charged.push({ ...record, costMicros: result.costMicros });
    }
    return charged;
  }

  private report(ctx: TenantContext, charged: readonly (UsageRecord & { costMicros: number })[]): void {
    for (const usage of charged) this.onCharged?.(ctx.tenantId, usage);
  }

  /**
   * The tokens/min limit mirrors an LLM provider's per-minute token quota, so it counts chat
   * tokens; embedding work is paced by the job scheduler and the embedding lane instead.
   */
  private async countTokens(ctx: TenantContext, records: readonly UsageRecord[]): Promise<void> {
    const tokens = records
      .filter((r) => r.status === "charged" && r.feature === "chat")
      .reduce((sum, r) => sum + r.inputTokens + r.outputTokens, 0);
    await this.tokenRate?.recordTokens(ctx.tenantId, tokens);
  }

  async status(ctx: TenantContext): Promise<BudgetSnapshot> {
    return this.db.withTenant(ctx, async (scope) => budgetSnapshot(scope, await readTenantSettings(scope)));
  }
}

/**
 * Refuses (402) new work of a tenant whose budget is already used up — spent, not merely held by
 * calls in flight — e.g. an upload that would otherwise wait in the queue only to fail at its
 * embedding. Runs inside the caller's tenant transaction.
 */
export async function refuseWhenBudgetSpent(scope: TenantScope, settings: TenantSettings): Promise<void> {
  const snapshot = await budgetSnapshot(scope, settings);
  for (const budget of budgetsOf(snapshot)) {
    if (budget.status.limit !== null && budget.status.used >= budget.status.limit) throw budgetExceeded(snapshot, budget);
  }
}

async function isCharged(scope: TenantScope, eventId: string): Promise<boolean> {
  const [row] = await scope.tx
    .select({ id: usageEvents.id })
    .from(usageEvents)
    .where(and(scope.owns(usageEvents.tenantId), eq(usageEvents.eventId, eventId), eq(usageEvents.status, "charged")));
  return row !== undefined;
}

/**
 * The tenant's budgets now — counters of the day and month, plus what calls in flight hold — and
 * the calling key's own monthly caps, counted the same way over that key's usage.
 */
async function budgetSnapshot(scope: TenantScope, settings: TenantSettings): Promise<BudgetSnapshot> {
  const now = new Date();
  const { day, month } = periodsOf(now);
  const keyId = scope.ctx.keyId;
  const keyMonth = keyMonthOf(keyId, now);
  const counters = await scope.tx
    .select()
    .from(usageCounters)
    .where(and(scope.owns(usageCounters.tenantId), inArray(usageCounters.period, [day, month, keyMonth])));
  const [held] = await scope.tx
    .select({
      tokens: sql<string>`coalesce(sum(${budgetReservations.tokens}), 0)::text`,
      cost: sql<string>`coalesce(sum(${budgetReservations.costMicros}), 0)::text`,
      keyTokens: sql<string>`coalesce(sum(${budgetReservations.tokens}) FILTER (WHERE ${budgetReservations.keyId} = ${keyId}), 0)::text`,
      keyCost: sql<string>`coalesce(sum(${budgetReservations.costMicros}) FILTER (WHERE ${budgetReservations.keyId} = ${keyId}), 0)::text`,
    })
    .from(budgetReservations)
    .where(and(scope.owns(budgetReservations.tenantId), gt(budgetReservations.expiresAt, now)));
  const [caps] = await scope.tx
    .select({ tokens: apiKeys.tokensPerMonth, cost: apiKeys.spendPerMonthMicros })
    .from(apiKeys)
    .where(and(scope.owns(apiKeys.tenantId), eq(apiKeys.id, keyId)));
  const counted = (period: string) => counters.find((c) => c.period === period);
  const nextDay = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)).toISOString();
  const nextMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)).toISOString();
  const plan = settings.plan;
  const reservedTokens = Number(held?.tokens ?? 0);
  const reservedCost = Number(held?.cost ?? 0);
  return {
    plan: plan.name,
    tokens_per_day: status(plan.tokensPerDay, counted(day)?.tokens ?? 0, reservedTokens, nextDay),
    tokens_per_month: status(plan.tokensPerMonth, counted(month)?.tokens ?? 0, reservedTokens, nextMonth),
    spend_per_month_micros: status(plan.spendPerMonthMicros, counted(month)?.costMicros ?? 0, reservedCost, nextMonth),
    key: {
      key_id: keyId,
      tokens_per_month: status(caps?.tokens ?? null, counted(keyMonth)?.tokens ?? 0, Number(held?.keyTokens ?? 0), nextMonth),
      spend_per_month_micros: status(caps?.cost ?? null, counted(keyMonth)?.costMicros ?? 0, Number(held?.keyCost ?? 0), nextMonth),
    },
  };
}

function status(limit: number | null, used: number, reserved: number, resetsAt: string): BudgetStatus {
  return {
    limit,
    used,
    reserved,
    remaining: limit === null ? null : Math.max(0, limit - used - reserved),
    resets_at: resetsAt,
  };
}

type BudgetName = "tokens_per_day" | "tokens_per_month" | "spend_per_month_micros";

/** One budget of a snapshot: the tenant's (its plan's) or the calling key's own. */
interface Budget {
  name: BudgetName;
  of: "plan" | "key";
  status: BudgetStatus;
  /** What a request adds to it: its tokens or its cost. */
  counts: "tokens" | "cost";
}

function budgetsOf(snapshot: BudgetSnapshot): Budget[] {
  return [
    { name: "tokens_per_day", of: "plan", status: snapshot.tokens_per_day, counts: "tokens" },
    { name: "tokens_per_month", of: "plan", status: snapshot.tokens_per_month, counts: "tokens" },
    { name: "spend_per_month_micros", of: "plan", status: snapshot.spend_per_month_micros, counts: "cost" },
    { name: "tokens_per_month", of: "key", status: snapshot.key.tokens_per_month, counts: "tokens" },
    { name: "spend_per_month_micros", of: "key", status: snapshot.key.spend_per_month_micros, counts: "cost" },
  ];
}

function budgetExceeded(snapshot: BudgetSnapshot, budget: Budget): BudgetExceededError {
  return new BudgetExceededError(budget.name, budget.status, snapshot.plan, budget.of === "key" ? snapshot.key.key_id : undefined);
}

/** The first budget the request would push past its limit, if any. */
function exceeded(snapshot: BudgetSnapshot, tokens: number, cost: number): Budget | undefined {
  return budgetsOf(snapshot).find(({ status: s, counts }) => s.limit !== null && s.used + s.reserved + (counts === "tokens" ? tokens : cost) > s.limit);
}

/** The largest share of any budget (the key's own included) the request would bring the tenant to (0 when unlimited). */
function share(snapshot: BudgetSnapshot, tokens: number, cost: number): number {
  const ratios = budgetsOf(snapshot).map(({ status: s, counts }) => (s.limit ? (s.used + s.reserved + (counts === "tokens" ? tokens : cost)) / s.limit : 0));
  return Math.max(0, ...ratios);
}
