import type { TenantContext } from "../core/tenant-context.js";
import type { FenceError } from "../core/errors.js";
import type { RunKind } from "../db/schema.js";
import type { RunRecorder } from "./run-recorder.js";

interface Summary {
  ctx: TenantContext;
  kind: RunKind;
  error: FenceError;
  minute: number;
  first: Date;
  last: Date;
  count: number;
  lastRequestId: string;
}

const MINUTE_MS = 60_000;

/**
 * Requests that admission refused, kept as one run record per tenant, key, kind, reason and minute
 * instead of one each (issue 16: a flood of refusals wrote a row per request, and the writes were
 * most of what a refusal cost). Counting is in memory; a minute's summary is written when the
 * minute is over, or earlier when the tenant's runs are read on this instance (so a read never
 * misses a refusal it could see). The run's request id is the minute's first refused request's;
 * its one step, `admission`, carries how many were refused and the last request id.
 */
export class RefusalSummaries {
  private readonly open = new Map<string, Summary>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    /** Starts the run record a summary is written as (RunRecords.start). */
    private readonly startRun: (ctx: TenantContext, kind: RunKind, startedAt: Date) => RunRecorder,
    private readonly now: () => number = Date.now,
  ) {}

  note(ctx: TenantContext, kind: RunKind, error: FenceError): void {
    const at = this.now();
    const minute = Math.floor(at / MINUTE_MS);
    const reason = (error.details as { reason?: string } | undefined)?.reason ?? error.code;
    const bucket = `${ctx.tenantId}|${ctx.keyId}|${kind}|${reason}`;
    let summary = this.open.get(bucket);
    if (summary && summary.minute !== minute) {
      void this.write(summary);
      summary = undefined;
    }
    if (!summary) {
      summary = { ctx, kind, error, minute, first: new Date(at), last: new Date(at), count: 0, lastRequestId: ctx.requestId };
      this.open.set(bucket, summary);
    }
    summary.count++;
    summary.last = new Date(at);
    summary.lastRequestId = ctx.requestId;
    this.flushAtMinuteEnd();
  }

  /** Writes the open summaries (of one tenant, or all) now, ended or not. */
  async flush(tenantId?: string): Promise<void> {
    const writes: Promise<void>[] = [];
    for (const [bucket, summary] of this.open) {
      if (tenantId !== undefined && summary.ctx.tenantId !== tenantId) continue;
      this.open.delete(bucket);
      writes.push(this.write(summary));
    }
    await Promise.all(writes);
  }

  private async flushEnded(): Promise<void> {
    this.timer = undefined;
    const minute = Math.floor(this.now() / MINUTE_MS);
    const writes: Promise<void>[] = [];
    for (const [bucket, summary] of this.open) {
      if (summary.minute >= minute) continue;
      this.open.delete(bucket);
      writes.push(this.write(summary));
    }
    if (this.open.size > 0) this.flushAtMinuteEnd();
    await Promise.all(writes);
  }

  /** Arms one timer for just after the current minute ends (none while one is armed). */
  private flushAtMinuteEnd(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => void this.flushEnded(), MINUTE_MS - (this.now() % MINUTE_MS) + 10);
    this.timer.unref?.();
  }

  private write(summary: Summary): Promise<void> {
    const recorder = this.startRun(summary.ctx, summary.kind, summary.first);
    recorder.addSteps([
      {
        name: "admission",
        status: "failed",
        started_at: summary.first.toISOString(),
        duration_ms: summary.last.getTime() - summary.first.getTime(),
        detail: { refused_requests: summary.count, last_request_id: summary.lastRequestId, code: summary.error.code },
        error: summary.error.message,
      },
    ]);
    return recorder.finish(summary.error);
  }
}
