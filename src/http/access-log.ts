import type { TenantContext } from "../core/tenant-context.js";
import type { Logger } from "../observability/logger.js";
import { RepeatSampler } from "../observability/repeat-sampler.js";
import type { RequestOutcome } from "./types.js";

/** Refusals come in floods: their lines are sampled (see AccessLog). */
const SAMPLED_STATUSES = new Set([401, 429, 503]);

/** What one access line says. */
export interface AccessEntry {
  method: string;
  route: string;
  status: number;
  latencyMs: number;
  outcome: RequestOutcome;
  requestId: string;
  tenant?: TenantContext | undefined;
}

/** What a tenant's child logger binds (tenant-auth.ts), for the lines written without one. */
export function tenantLogFields(ctx: TenantContext): Record<string, string> {
  return { tenant_id: ctx.tenantId, key_id: ctx.keyId, project: ctx.project, environment: ctx.environment };
}

/** The outcome's fields under their log names; only those that were set. */
function outcomeFields(outcome: RequestOutcome): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(outcome)) {
    if (value !== undefined) fields[name.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`)] = value;
  }
  return fields;
}

/**
 * One access-log line a request: method, route pattern (never the raw path, which may hold ids or
 * personal data), status, latency and what the request's outcome gathered (error code, limit
 * decision, model, tokens, cache). Bodies are never logged.
 *
 * Refusals (401, 429, 503) come in floods: their lines are sampled — the first of a kind (route,
 * status, reason, tenant, key) each second is written with `repeated`, the count skipped before it,
 * and what is left at the end of a second is written once by a drain ("requests repeated", with the
 * last one's fields and the count) — so a flood costs a few lines a second, and every refusal is
 * still counted (and in `fence_limit_refusals_total`).
 *
 * One per instance, shared by the Hono app's request context and the Node front door, so a flood
 * answered by either is sampled as one.
 */
export class AccessLog {
  /** Sampled lines are kept as their entries: a line that is skipped costs no fields object. */
  private readonly repeats = new RepeatSampler<{ entry: AccessEntry; log: Logger | undefined }>();
  private drainTimer: NodeJS.Timeout | undefined;

  constructor(private readonly logger: Logger) {}

  /**
   * Writes (or samples) the line. `log` is the request's child logger, which binds the request id
   * and, once authenticated, the tenant's fields; without one (a refusal answered before any was
   * made) the line carries the request id itself.
   */
  write(entry: AccessEntry, log?: Logger): void {
    const { status, method, route, outcome, tenant } = entry;
    if (!SAMPLED_STATUSES.has(status)) return (log ?? this.logger).info(this.fieldsOf(entry, log), "request");
    const signature = `${status} ${method} ${route} ${outcome.errorCode ?? ""} ${outcome.limitReason ?? ""} ${tenant?.tenantId ?? ""} ${tenant?.keyId ?? ""}`;
    const sampled = this.repeats.sample(signature, { entry, log });
    if (!sampled.write) return this.drainLater();
    const fields = this.fieldsOf(entry, log);
    (log ?? this.logger).info(sampled.repeated > 0 ? { ...fields, repeated: sampled.repeated } : fields, "request");
  }

  private fieldsOf(entry: AccessEntry, log: Logger | undefined): Record<string, unknown> {
    const fields: Record<string, unknown> = {
      ...(log ? {} : { request_id: entry.requestId }),
      method: entry.method,
      route: entry.route,
      status: entry.status,
      latency_ms: Math.round(entry.latencyMs * 10) / 10,
      ...outcomeFields(entry.outcome),
    };
    // A refusal answered before authentication has no tenant child logger: its line names the tenant itself.
    if (entry.outcome.refusedOnRecord && entry.tenant) Object.assign(fields, tenantLogFields(entry.tenant));
    return fields;
  }

  /** The last skipped line of each kind, written once its window is over, with the count (on the instance's logger, naming the request and tenant). */
  private drainLater(): void {
    this.drainTimer ??= setTimeout(() => {
      this.drainTimer = undefined;
      for (const { last, repeated } of this.repeats.drain()) {
        const { entry } = last;
        const fields = { ...this.fieldsOf(entry, undefined), tenant_id: entry.tenant?.tenantId, key_id: entry.tenant?.keyId };
        this.logger.info({ ...fields, repeated }, "requests repeated");
      }
      // A kind still inside its window keeps its count for a later drain, even if no request comes.
      if (this.repeats.holdsSkipped()) this.drainLater();
    }, 1100);
    this.drainTimer.unref?.();
  }
}
