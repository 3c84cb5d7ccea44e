import type { RunKind, RunStep } from "../db/schema.js";
import type { Logger } from "../observability/logger.js";
import { maskPii } from "../observability/pii-mask.js";
import type { TenantContext } from "../core/tenant-context.js";
import type { FenceError } from "../core/errors.js";
import { RefusalSummaries } from "./refusal-summaries.js";
import { RunRecorder, type FinishedRun, type RunFields } from "./run-recorder.js";
import type { RunStore } from "./run-store.js";

/** Longest question or answer kept on a run (the chat body allows far less for a question). */
const MAX_TEXT_CHARS = 20_000;
const MAX_ERROR_CHARS = 500;
/** Run writes under way at once before a request waits for its own (see saveAfterResponse). */
const MAX_PENDING = 256;

/**
 * Starts run recorders and stores what they finish, in the tenant's own transaction. Text that
 * reaches a run — question, answer, error messages — is PII-masked here, the one place a run is
 * written. A failed write never fails the request it records: it is logged (without the run's
 * text) and counted, and the request goes on.
 */
export class RunRecords {
  private failed = 0;
  /** Admission refusals, summarised per tenant, key, reason and minute. */
  private readonly refusals = new RefusalSummaries((ctx, kind, startedAt) => this.start(ctx, kind, {}, startedAt));
  /** Writes under way, by tenant: the response does not wait for them; reads on this instance do. */
  private readonly pending = new Set<{ tenantId: string; done: Promise<void> }>();

  constructor(
    readonly store: RunStore,
    private readonly logger: Logger,
    /** False turns recording off (the overhead benchmark's baseline); reads still work. */
    private readonly enabled = true,
    /** Keeps a write alive past its response where the runtime needs telling (Workers: waitUntil). */
    private readonly keepAlive: (write: Promise<void>) => void = () => undefined,
  ) {}

  /**
   * A request that admission refused before its route ran: counted into its minute's summary run
   * (RefusalSummaries), not written as a run of its own — a flood of refusals writes nothing.
   */
  noteRefusal(ctx: TenantContext, kind: RunKind, error: FenceError): void {
    if (this.enabled) this.refusals.note(ctx, kind, error);
  }

  start(ctx: TenantContext, kind: RunKind, fields: RunFields = {}, startedAt?: Date): RunRecorder {
    return new RunRecorder(ctx, kind, (run) => this.saveAfterResponse(run), fields, startedAt);
  }

  /**
   * Stores a finished run without making its request wait: the write is its own transaction
   * (measured 1.2–1.4 ms at p50, most of it the commit), which `npm run bench:observability` found
   * was nearly all of what recording added to a chat. With MAX_PENDING writes under way the
   * request does wait, so a slow database cannot grow memory without bound.
   */
  private async saveAfterResponse(run: FinishedRun): Promise<void> {
    if (!this.enabled) return;
    if (this.pending.size >= MAX_PENDING) return this.save(run);
    const entry = { tenantId: run.ctx.tenantId, done: Promise.resolve() };
    entry.done = this.save(run).finally(() => this.pending.delete(entry));
    this.pending.add(entry);
    this.keepAlive(entry.done);
  }

  /**
   * Waits for this instance's writes under way (of one tenant, or all): a read of the runs — and
   * closing the instance — comes after them, so a client reading its run right after the answer
   * finds it on the instance that answered. Another instance sees it once the write commits.
   */
  async settled(tenantId?: string): Promise<void> {
    await this.refusals.flush(tenantId);
    await Promise.all([...this.pending].filter((p) => tenantId === undefined || p.tenantId === tenantId).map((p) => p.done));
  }

  /** Runs that could not be stored since start (each is also logged): for tests and metrics. */
  get recordingFailures(): number {
    return this.failed;
  }

  async save(run: FinishedRun): Promise<void> {
    if (!this.enabled) return;
    try {
      await this.store.insert(run.ctx, {
        requestId: run.ctx.requestId,
        kind: run.kind,
        status: run.status,
        errorCode: run.errorCode,
        errorMessage: masked(run.errorMessage, MAX_ERROR_CHARS),
        keyId: run.ctx.keyId,
        project: run.ctx.project,
        environment: run.ctx.environment,
        promptVersion: run.fields.promptVersion ?? null,
        provider: run.fields.provider ?? null,
        model: run.fields.model ?? null,
        question: masked(run.fields.question, MAX_TEXT_CHARS),
        answer: masked(run.fields.answer, MAX_TEXT_CHARS),
        steps: run.steps.map(maskStep),
        startedAt: run.startedAt,
        finishedAt: run.finishedAt,
        latencyMs: run.latencyMs,
      });
    } catch (error) {
      this.failed++;
      // Not the error itself: a driver error quotes the statement's parameters, i.e. the run's text.
      this.logger.warn(
        {
          tenant_id: run.ctx.tenantId,
          request_id: run.ctx.requestId,
          run_kind: run.kind,
          error_name: (error as Error)?.name,
          error_code: driverCode(error),
        },
        "run record could not be stored",
      );
    }
  }
}

/**
 * Masked, cut to length, and storable: Postgres holds neither NUL in text nor NUL or an unpaired
 * surrogate in jsonb, so those become U+FFFD instead of failing the write.
 */
function masked(text: string | null | undefined, maxChars: number): string | null {
  if (text === null || text === undefined) return null;
  const cut = text.length > maxChars ? text.slice(0, maxChars) : text;
  return maskPii(cut.replaceAll("\u0000", "\uFFFD").replace(UNPAIRED_SURROGATE, "\uFFFD"));
}

/** A surrogate without its pair (also what cutting a string can leave behind). */
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function maskStep(step: RunStep): RunStep {
  return step.error === undefined ? step : { ...step, error: masked(step.error, MAX_ERROR_CHARS)! };
}

/** The SQLSTATE of a database error (e.g. 42501 insufficient privilege), found through causes. */
function driverCode(error: unknown): string | undefined {
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}
