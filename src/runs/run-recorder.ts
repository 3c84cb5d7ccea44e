import type { RunKind, RunStatus, RunStep } from "../db/schema.js";
import { traitsOf } from "../core/error-catalogue.js";
import { FenceError, publicErrorOf } from "../core/errors.js";
import type { StepRecorder } from "../core/step-recorder.js";
import type { TenantContext } from "../core/tenant-context.js";

/**
 * What a run records besides its steps. The question and answer are the tenant's own text; they
 * are PII-masked when the run is stored (run-records.ts), never here, so masking has one place.
 */
export interface RunFields {
  promptVersion?: string | null;
  provider?: string | null;
  model?: string | null;
  question?: string | null;
  answer?: string | null;
}

/** A run as it ended: everything `RunRecords` needs to store it. */
export interface FinishedRun {
  ctx: TenantContext;
  kind: RunKind;
  status: RunStatus;
  errorCode: string | null;
  errorMessage: string | null;
  fields: RunFields;
  steps: readonly RunStep[];
  startedAt: Date;
  finishedAt: Date;
  latencyMs: number;
}

type Detail = Record<string, unknown>;

/**
 * The part of a recorder that the services doing the work see: time a step, note a step measured
 * elsewhere, set a field. Services take this (or nothing: `NOT_RECORDED`), so recording stays at
 * step boundaries and out of their logic. A StepRecorder (core/step-recorder.ts), so the ingestion
 * pipeline records a request's steps through the same interface as a job's.
 */
export interface RunSteps extends StepRecorder {
  step<T>(name: string, work: () => T | Promise<T>, describe?: (result: T) => Detail, detail?: Detail): Promise<T>;
  streamStep<Y, R>(name: string, source: AsyncGenerator<Y, R>, describe: (result: R) => Detail, detail?: Detail): AsyncGenerator<Y, R>;
  note(name: string, detail: Detail, durationMs?: number): void;
  set(fields: RunFields): void;
}

/** For callers that record nothing (benchmarks, tools): runs each step as is. */
export const NOT_RECORDED: RunSteps = {
  step: async (_name, work) => work(),
  streamStep: (_name, source) => source,
  note: () => undefined,
  set: () => undefined,
};

/** A run's status and error code from what ended it. */
export function outcomeOf(error: unknown): { status: RunStatus; code: string | null } {
  if (error === undefined) return { status: "succeeded", code: null };
  const code = errorCode(error);
  return { status: traitsOf(error).refusal ? "refused" : "failed", code };
}

export function errorCode(error: unknown): string {
  if (error instanceof FenceError || error instanceof StreamAbandoned) return error.code;
  return "internal_error";
}

/**
 * An error as a run may keep it: a Fence error's own message (written for the client); anything
 * else is internal and may carry SQL or parameters, so only its kind is kept.
 */
export function errorMessage(error: unknown): string {
  return error instanceof StreamAbandoned ? error.message : publicErrorOf(error).message;
}

/** The client stopped reading a streamed answer before it ended. */
export class StreamAbandoned extends Error {
  readonly code = "stream_abandoned";
  constructor() {
    super("The client stopped reading the stream before the answer ended.");
  }
}

/**
 * Collects one chat or ingestion run's steps in memory while it runs, then hands the finished
 * run to its sink once (RunRecords stores it in the tenant's transaction). `finish` never throws:
 * recording must not fail the request it records.
 */
export class RunRecorder implements RunSteps {
  readonly steps: RunStep[] = [];
  private readonly started: number;
  private readonly fields: RunFields = {};
  private finished = false;

  constructor(
    readonly ctx: TenantContext,
    readonly kind: RunKind,
    private readonly sink: (run: FinishedRun) => Promise<void>,
    fields: RunFields = {},
    /** When the run began, if before the recorder was made (a job attempt). */
    readonly startedAt = new Date(),
  ) {
    Object.assign(this.fields, fields);
    this.started = performance.now() - (Date.now() - startedAt.getTime());
  }

  set(fields: RunFields): void {
    Object.assign(this.fields, fields);
  }

  /** Times `work` as step `name`; a failure is recorded with its code and rethrown. */
  async step<T>(name: string, work: () => T | Promise<T>, describe?: (result: T) => Detail, detail: Detail = {}): Promise<T> {
    const startedAt = new Date();
    const started = performance.now();
    try {
      const result = await work();
      this.push(name, "succeeded", startedAt, started, { ...detail, ...describe?.(result) });
      return result;
    } catch (error) {
      this.push(name, "failed", startedAt, started, { ...detail, code: errorCode(error) }, errorMessage(error));
      throw error;
    }
  }

  /**
   * A streamed step: timed from the first pull to the generator's return, so it spans the whole
   * stream. A consumer that stops early ends it as failed (`stream_abandoned`).
   */
  async *streamStep<Y, R>(name: string, source: AsyncGenerator<Y, R>, describe: (result: R) => Detail, detail: Detail = {}): AsyncGenerator<Y, R> {
    const startedAt = new Date();
    const started = performance.now();
    let ended = false;
    try {
      const result = yield* source;
      ended = true;
      this.push(name, "succeeded", startedAt, started, { ...detail, ...describe(result) });
      return result;
    } catch (error) {
      ended = true;
      this.push(name, "failed", startedAt, started, { ...detail, code: errorCode(error) }, errorMessage(error));
      throw error;
    } finally {
      if (!ended) {
        const abandoned = new StreamAbandoned();
        this.push(name, "failed", startedAt, started, { ...detail, code: abandoned.code }, abandoned.message);
      }
    }
  }

  /** A step measured by someone else (e.g. the query embedding, reported by the retriever). */
  note(name: string, detail: Detail, durationMs = 0): void {
    const now = performance.now();
    this.push(name, "succeeded", new Date(Date.now() - durationMs), now - durationMs, detail);
  }

  /** Steps recorded elsewhere (a job's steps), as they were. */
  addSteps(steps: readonly RunStep[]): void {
    this.steps.push(...steps);
  }

  /** Runs the whole of the work and records how it ended; the work's own result or error passes through. */
  async around<T>(work: () => Promise<T>, onSuccess?: (result: T) => void): Promise<T> {
    let result: T;
    try {
      result = await work();
    } catch (error) {
      await this.finish(error);
      throw error;
    }
    try {
      onSuccess?.(result);
    } finally {
      await this.finish();
    }
    return result;
  }

  /** Ends the run (succeeded without an error) and hands it to the sink, once. */
  async finish(error?: unknown): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    const { status, code } = outcomeOf(error);
    await this.sink({
      ctx: this.ctx,
      kind: this.kind,
      status,
      errorCode: code,
      errorMessage: error === undefined ? null : errorMessage(error),
      fields: { ...this.fields },
      steps: [...this.steps],
      startedAt: this.startedAt,
      finishedAt: new Date(),
      latencyMs: Math.round(performance.now() - this.started),
    }).catch(() => undefined);
  }

  private push(name: string, status: RunStep["status"], startedAt: Date, started: number, detail: Detail, error?: string): void {
    this.steps.push({
      name,
      status,
      started_at: startedAt.toISOString(),
      duration_ms: Math.round((performance.now() - started) * 10) / 10,
      ...(Object.keys(detail).length > 0 ? { detail } : {}),
      ...(error ? { error } : {}),
    });
  }
}
