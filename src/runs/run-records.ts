import type { RunKind, RunStep } from "../db/schema.js";
import type { Logger } from "../observability/logger.js";
import { maskPii } from "../observability/pii-mask.js";
import type { TenantContext } from "../tenancy/tenant-context.js";
import { RunRecorder, type FinishedRun, type RunFields } from "./run-recorder.js";
import type { RunStore } from "./run-store.js";

/** Longest question or answer kept on a run (the chat body allows far less for a question). */
const MAX_TEXT_CHARS = 20_000;
const MAX_ERROR_CHARS = 500;

/**
 * Starts run recorders and stores what they finish, in the tenant's own transaction. Text that
 * reaches a run — question, answer, error messages — is PII-masked here, the one place a run is
 * written. A failed write never fails the request it records: it is logged (without the run's
 * text) and counted, and the request goes on.
 */
export class RunRecords {
  private failed = 0;

  constructor(
    readonly store: RunStore,
    private readonly logger: Logger,
    /** False turns recording off (the overhead benchmark's baseline); reads still work. */
    private readonly enabled = true,
  ) {}

  start(ctx: TenantContext, kind: RunKind, fields: RunFields = {}, startedAt?: Date): RunRecorder {
    return new RunRecorder(ctx, kind, (run) => this.save(run), fields, startedAt);
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
