import { and, eq, sql } from "drizzle-orm";
import type { Database, TenantScope } from "../db/database.js";
import { jobs, type JobStep } from "../db/schema.js";
import { publicErrorOf } from "../core/errors.js";
import type { StepDetail, StepRecorder } from "../core/step-recorder.js";
import type { TenantContext } from "../core/tenant-context.js";
import { jobChargeId, jobOperationId, type ClaimedJob } from "./fair-scheduler.js";
import { DROPPED_PAYLOAD, loadPayload } from "./job-payloads.js";

/**
 * One claimed job in the hands of its handler: the verified identity it runs as, its steps (each
 * recorded on the job with timing and outcome: the StepRecorder a job gives the ingestion
 * pipeline), and `completeWithin`, which marks it succeeded inside the handler's final
 * transaction — only if this worker still holds the lease, so a worker that was presumed dead
 * cannot store a second copy after another one took over.
 */
export class RunningJob implements StepRecorder {
  /** This attempt's budget reservation (released by the scheduler if the attempt is lost). */
  readonly operationId: string;
  /** The job's ledger identity, shared by its attempts: however often it runs, it is charged once. */
  readonly chargeId: string;
  private stepStartedAt = Date.now();
  private stepName = "";
  /** Set when the step under way completed the job: `completeWithin` has recorded it already. */
  private stepRecordedByCompletion = false;
  /** This attempt's steps as recorded on the job, and its result: for the attempt's run record. */
  readonly attemptSteps: JobStep[] = [];
  result: Record<string, unknown> | undefined;

  constructor(
    readonly claim: ClaimedJob,
    readonly ctx: TenantContext,
    private readonly db: Database,
    private readonly workerId: string,
  ) {
    this.operationId = jobOperationId(claim.id, claim.attempts);
    this.chargeId = jobChargeId(claim.id);
  }

  get input(): Record<string, unknown> {
    return this.claim.input;
  }

  /** The step running now, or the last one that ran (logged with a failure). */
  get currentStep(): string | undefined {
    return this.stepName || undefined;
  }

  loadPayload(): Promise<Uint8Array | null> {
    return loadPayload(this.db, this.ctx, this.claim.id);
  }

  /**
   * Runs and records one step. A step that ends the job (it calls `completeWithin`) is recorded
   * there, in the same transaction as the job's result, so it is never recorded twice — and the
   * caller need not know which of its steps is the last.
   */
  async step<T>(name: string, run: () => Promise<T>, describe: (result: T) => StepDetail = () => ({})): Promise<T> {
    this.stepName = name;
    this.stepStartedAt = Date.now();
    this.stepRecordedByCompletion = false;
    try {
      const result = await run();
      if (!this.stepRecordedByCompletion) await this.record(this.stepRecord("succeeded", describe(result)));
      return result;
    } catch (error) {
      if (!(error instanceof LeaseLostError)) {
        // The tenant reads its job's steps: an internal error's own message is for the log only.
        await this.record(this.stepRecord("failed", undefined, publicErrorOf(error).message)).catch(() => undefined);
      }
      throw error;
    }
  }

  /** Marks the job succeeded inside the caller's tenant transaction; throws if the lease is lost. */
  async completeWithin(scope: TenantScope, result: Record<string, unknown>, detail: Record<string, unknown> = {}): Promise<void> {
    const step = this.stepRecord("succeeded", detail);
    const rows = await scope.tx
      .update(jobs)
      .set({
        status: "succeeded",
        result,
        ...DROPPED_PAYLOAD,
        steps: appendStep(step),
        errorCode: null,
        errorMessage: null,
        finishedAt: sql`now()`,
        lockedBy: null,
        lockedUntil: null,
      })
      .where(and(this.ownJob(scope), eq(jobs.status, "running")))
      .returning({ id: jobs.id });
    if (rows.length === 0) throw new LeaseLostError();
    this.attemptSteps.push(step);
    this.stepRecordedByCompletion = true;
    this.result = result;
  }

  /**
   * Locks the job's row in the caller's tenant transaction and tells whether this worker still
   * holds it: a charge written in that transaction cannot race a takeover (the scheduler skips a
   * locked row), and an attempt that has lost its job charges nothing.
   */
  async stillHeld(scope: TenantScope): Promise<boolean> {
    const rows = await scope.tx
      .select({ id: jobs.id })
      .from(jobs)
      .where(and(this.ownJob(scope), eq(jobs.status, "running")))
      .for("update");
    return rows.length > 0;
  }

  /** What an attempt that lost its job ends with. */
  lostError(): Error {
    return new LeaseLostError();
  }

  /** Completes the job in a transaction of its own (when the handler has nothing to store). */
  async complete(result: Record<string, unknown>, detail?: Record<string, unknown>): Promise<void> {
    await this.db.withTenant(this.ctx, (scope) => this.completeWithin(scope, result, detail));
  }

  private stepRecord(status: JobStep["status"], detail?: Record<string, unknown>, error?: string): JobStep {
    return {
      name: this.stepName,
      status,
      attempt: this.claim.attempts,
      started_at: new Date(this.stepStartedAt).toISOString(),
      duration_ms: Date.now() - this.stepStartedAt,
      ...(detail && Object.keys(detail).length > 0 ? { detail } : {}),
      ...(error ? { error: error.slice(0, 500) } : {}),
    };
  }

  private async record(step: JobStep): Promise<void> {
    await this.db.withTenant(this.ctx, (scope) =>
      scope.tx.update(jobs).set({ steps: appendStep(step) }).where(this.ownJob(scope)),
    );
    this.attemptSteps.push(step);
  }

  /** This job, as long as this worker holds it. */
  private ownJob(scope: TenantScope) {
    return and(scope.owns(jobs.tenantId), eq(jobs.id, this.claim.id), eq(jobs.lockedBy, this.workerId));
  }
}

function appendStep(step: JobStep) {
  return sql`${jobs.steps} || ${JSON.stringify([step])}::jsonb`;
}

/** The job's lease passed to another worker: this worker's result must not be written. */
export class LeaseLostError extends Error {
  constructor() {
    super("The job's lease was lost to another worker.");
  }
}
