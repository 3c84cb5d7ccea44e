import { randomUUID } from "node:crypto";
import { and, eq, sql } from "drizzle-orm";
import type { Database, TenantScope } from "../db/database.js";
import { jobs, type JobStep } from "../db/schema.js";
import { publicErrorOf } from "../errors.js";
import type { Logger } from "../observability/logger.js";
import { resumeJobIdentity } from "../tenancy/authenticate.js";
import type { TenantContext } from "../tenancy/tenant-context.js";
import { jobChargeId, jobOperationId, type ClaimedJob, type FairScheduler } from "./fair-scheduler.js";
import { payloadAsBase64, payloadFromBase64 } from "./job-queue.js";
import { LeaseLostError, type JobAttemptRecorder, type JobHandler, type JobObserver, type JobRunnerOptions } from "./job-contracts.js";
import { backoffMs, failureCode, isRetryable } from "./retry-policy.js";

export type { JobAttemptRecorder, JobHandler, JobObserver, JobRunnerOptions } from "./job-contracts.js";
export { LeaseLostError } from "./job-contracts.js";

/**
 * One claimed job in the hands of its handler: the verified identity it runs as, its steps (each
 * recorded with timing and outcome), and `completeWithin`, which marks it succeeded inside the
 * handler's final transaction — only if this worker still holds the lease, so a worker that was
 * presumed dead cannot store a second copy after another one took over.
 */
export class RunningJob {
  /** This attempt's budget reservation (released by the scheduler if the attempt is lost). */
  readonly operationId: string;
  /** The job's ledger identity, shared by its attempts: however often it runs, it is charged once. */
  readonly chargeId: string;
  private stepStartedAt = Date.now();
  private stepName = "";
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

  async loadPayload(): Promise<Uint8Array | null> {
    const [row] = await this.db.withTenant(this.ctx, (scope) =>
      scope.tx.select({ payload: payloadAsBase64 }).from(jobs).where(this.ownJob(scope)),
    );
    return payloadFromBase64(row?.payload ?? null);
  }

  /**
   * Runs and records one step. A step that ends the job (`final`) is recorded by `completeWithin`
   * in the same transaction as its result, so it is never recorded twice.
   */
  async step<T>(
    name: string,
    run: () => Promise<T>,
    describe: (result: T) => Record<string, unknown> = () => ({}),
    options: { final?: boolean } = {},
  ): Promise<T> {
    this.stepName = name;
    this.stepStartedAt = Date.now();
    try {
      const result = await run();
      if (!options.final) await this.record(this.stepRecord("succeeded", describe(result)));
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
        payload: null,
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

/**
 * This instance's workers: each claims the next job from the fair scheduler, runs it under a lease
 * it keeps renewing, and records the outcome — success (written by the handler), a retry with
 * jittered exponential backoff, or failure. Idle workers wake when this instance enqueues, and poll
 * for jobs queued by other instances.
 */
export class JobRunner {
  private readonly handlers: Map<string, JobHandler>;
  private readonly idle = new Set<() => void>();
  private readonly loops: Promise<void>[] = [];
  private readonly instanceId = randomUUID().slice(0, 8);
  private stopping = false;
  private batchRuns = 0;
  private attemptRecorder: JobAttemptRecorder | undefined;

  constructor(
    private readonly db: Database,
    private readonly scheduler: FairScheduler,
    handlers: readonly JobHandler[],
    private readonly logger: Logger,
    private readonly options: JobRunnerOptions,
    private readonly observer?: JobObserver,
  ) {
    this.handlers = new Map(handlers.map((h) => [h.kind, h]));
  }

  /**
   * Starts `workers` loops and the reserved ones (the configured numbers by default); a stopped
   * runner can start again.
   */
  start(workers = this.options.workers, reservedWorkers = workers > 0 ? this.options.reservedWorkers : 0): void {
    this.stopping = false;
    for (let i = 0; i < workers; i++) this.loops.push(this.loop(`${this.instanceId}:${this.loops.length}`, false));
    for (let i = 0; i < reservedWorkers; i++) this.loops.push(this.loop(`${this.instanceId}:${this.loops.length}r`, true));
  }

  /** Records every attempt that ran (one run record each); set once by the composition root. */
  recordAttemptsWith(recorder: JobAttemptRecorder): this {
    this.attemptRecorder = recorder;
    return this;
  }

  /** There is new work: idle workers look now instead of at their next poll. */
  wake(): void {
    for (const resume of this.idle) resume();
  }

  /** Stops claiming, and waits for the jobs in hand to finish. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    await Promise.all(this.loops.splice(0));
  }

  /**
   * Claims and runs due jobs one after another until none is left, `maxJobs` ran or `deadline`
   * passed; for runtimes without background loops (Workers: after a 202, and from a Cron Trigger).
   * With `tenantId`, only that tenant's jobs: a tenant's request must not spend its invocation on
   * other tenants' work (their jobs run from the cron, each as its own tenant).
   */
  async runAvailable(maxJobs: number, deadline = Number.POSITIVE_INFINITY, options: { tenantId?: string } = {}): Promise<number> {
    // One id per call: two invocations of one isolate must not pass for the same lease holder.
    const workerId = `${this.instanceId}:batch-${++this.batchRuns}`;
    let ran = 0;
    while (ran < maxJobs && Date.now() < deadline) {
      const job = await this.scheduler.claim(workerId, { onlyIdleTenants: false, tenantId: options.tenantId });
      if (!job) break;
      await this.runClaimed(job, workerId);
      ran++;
    }
    return ran;
  }

  private async loop(workerId: string, reserved: boolean): Promise<void> {
    while (!this.stopping) {
      let job: ClaimedJob | undefined;
      try {
        job = await this.scheduler.claim(workerId, { onlyIdleTenants: reserved });
      } catch (error) {
        this.logger.warn({ err: error }, "job claim failed");
      }
      if (job) await this.runClaimed(job, workerId);
      else await this.idleFor(this.options.pollMs);
    }
  }

  private idleFor(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.idle.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.idle.add(done);
    });
  }

  private async runClaimed(claim: ClaimedJob, workerId: string): Promise<void> {
    let log = this.logger.child({ job_id: claim.id, tenant_id: claim.tenantId, key_id: claim.keyId, kind: claim.kind, attempt: claim.attempts });
    const heartbeat = setInterval(() => {
      this.scheduler.heartbeat(claim, workerId).catch((error: unknown) => log.warn({ err: error }, "job heartbeat failed"));
    }, Math.max(50, Math.floor(this.options.leaseMs / 3)));
    const started = Date.now();
    this.observer?.claimed(claim);
    let running: RunningJob | undefined;
    try {
      const handler = this.handlers.get(claim.kind);
      const ctx = await resumeJobIdentity(this.db, claim);
      if (!handler || !ctx) {
        const [code, message] = !handler
          ? ["unknown_job_kind", `No handler for jobs of kind '${claim.kind}'.`]
          : ["key_revoked", "The API key that submitted this job has been revoked."];
        await this.finish(claim, workerId, { kind: "failed", code, message });
        log.warn({ code }, "job failed");
        return;
      }
      // Production and test traffic are told apart by the key's environment, on every job line.
      log = log.child({ project: ctx.project, environment: ctx.environment });
      log.info("job started");
      running = new RunningJob(claim, ctx, this.db, workerId);
      await handler.run(running);
      log.info({ latency_ms: Date.now() - started }, "job succeeded");
      this.observer?.finished(claim, "succeeded");
      await this.attemptRecorder?.attemptEnded(running, new Date(started));
    } catch (error) {
      await this.afterFailure(claim, workerId, error, log.child({ step: running?.currentStep, latency_ms: Date.now() - started }));
      // A lost lease is the other worker's attempt to record.
      if (running && !(error instanceof LeaseLostError)) await this.attemptRecorder?.attemptEnded(running, new Date(started), error);
    } finally {
      clearInterval(heartbeat);
    }
  }

  private async afterFailure(claim: ClaimedJob, workerId: string, error: unknown, log: Logger): Promise<void> {
    if (error instanceof LeaseLostError) {
      log.warn("job lease lost; another worker owns it now");
      return;
    }
    const code = failureCode(error);
    // Stored where the tenant reads it (GET /v1/jobs/:id); the error itself is logged below.
    const message = publicErrorOf(error).message.slice(0, 500);
    try {
      if (!isRetryable(error) || claim.attempts >= claim.maxAttempts) {
        await this.finish(claim, workerId, { kind: "failed", code, message });
        log.warn({ code, err: error }, "job failed");
      } else {
        const retryAfterSec = Number((error as { headers?: Record<string, string> }).headers?.["Retry-After"] ?? 0);
        const delayMs = Math.max(retryAfterSec * 1000, backoffMs(this.options.retryBaseMs, claim.attempts));
        await this.finish(claim, workerId, { kind: "retry", code, message, delayMs });
        log.warn({ code, delay_ms: delayMs, err: error }, "job attempt failed; retrying");
      }
    } catch (recordError) {
      // The lease will expire and the job will be claimed again: nothing is lost.
      log.error({ err: recordError }, "could not record the job's failure");
    }
  }

  private async finish(
    claim: ClaimedJob,
    workerId: string,
    outcome: { kind: "failed"; code: string; message: string } | { kind: "retry"; code: string; message: string; delayMs: number },
  ): Promise<void> {
    await this.db.asPlatformAdmin("job-record-outcome", (tx) =>
      tx.execute(
        outcome.kind === "failed"
          ? sql`UPDATE jobs SET status = 'failed', error_code = ${outcome.code}, error_message = ${outcome.message},
                  payload = NULL, finished_at = now(), locked_by = NULL, locked_until = NULL
                WHERE tenant_id = ${claim.tenantId} AND id = ${claim.id} AND status = 'running' AND locked_by = ${workerId}`
          : sql`UPDATE jobs SET status = 'queued', error_code = ${outcome.code}, error_message = ${outcome.message},
                  run_after = now() + ${`${outcome.delayMs} milliseconds`}::interval, locked_by = NULL, locked_until = NULL
                WHERE tenant_id = ${claim.tenantId} AND id = ${claim.id} AND status = 'running' AND locked_by = ${workerId}`,
      ),
    );
    this.observer?.finished(claim, outcome.kind);
  }
}

function appendStep(step: JobStep) {
  return sql`${jobs.steps} || ${JSON.stringify([step])}::jsonb`;
}
