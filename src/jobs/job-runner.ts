import { asBulkWork, asInteractiveWork } from "../flow/work-class.js";
import { randomUUID } from "node:crypto";
import { sql } from "drizzle-orm";
import { queryRows, type Database } from "../db/database.js";
import { FenceError, publicErrorOf } from "../core/errors.js";
import type { Logger } from "../observability/logger.js";
import { resumeJobIdentity } from "../tenancy/authenticate.js";
import type { ClaimedJob, FairScheduler } from "./fair-scheduler.js";
import type { JobHandler, JobObserver, JobRunnerOptions } from "./job-contracts.js";
import { releasePayloads } from "./job-payloads.js";
import { backoffMs, failureCode, isRetryable } from "./retry-policy.js";
import { LeaseLostError, RunningJob } from "./running-job.js";

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
    // Jobs are bulk work: shared queues (the database's too) serve requests first.
    for (let i = 0; i < workers; i++) this.loops.push(asBulkWork(() => this.loop(`${this.instanceId}:${this.loops.length}`, false)));
    for (let i = 0; i < reservedWorkers; i++) this.loops.push(asBulkWork(() => this.loop(`${this.instanceId}:${this.loops.length}r`, true)));
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
  runAvailable(maxJobs: number, deadline = Number.POSITIVE_INFINITY, options: { tenantId?: string } = {}): Promise<number> {
    return asBulkWork(() => this.runAvailableNow(maxJobs, deadline, options));
  }

  private async runAvailableNow(maxJobs: number, deadline: number, options: { tenantId?: string }): Promise<number> {
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
      // A lease renewal must not wait behind requests: a lost lease would run the job twice.
      asInteractiveWork(() => this.scheduler.heartbeat(claim, workerId)).catch((error: unknown) => log.warn({ err: error }, "job heartbeat failed"));
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
          : ["key_revoked", "The API key that submitted this job has been revoked or has expired."];
        await this.finish(claim, workerId, { kind: "failed", code, message });
        log.warn({ code }, "job failed");
        return;
      }
      // Production and test traffic are told apart by the key's environment, on every job line.
      log = log.child({ project: ctx.project, environment: ctx.environment });
      log.info("job started");
      running = new RunningJob(claim, ctx, this.db, workerId);
      await handler.run(running);
      if (running.result !== undefined) await this.dropPayloadFile(claim, log); // completeWithin committed
      log.info({ latency_ms: Date.now() - started }, "job succeeded");
      this.observer?.finished(claim, "succeeded");
    } catch (error) {
      await this.afterFailure(claim, workerId, error, log.child({ step: running?.currentStep, latency_ms: Date.now() - started }));
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
        const retryAfterSec = error instanceof FenceError ? (error.retryAfterSeconds ?? 0) : 0;
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
    const recorded = await this.db.asPlatformAdmin("job-record-outcome", (tx) =>
      queryRows<{ id: string }>(
        tx,
        outcome.kind === "failed"
          ? sql`UPDATE jobs SET status = 'failed', error_code = ${outcome.code}, error_message = ${outcome.message},
                  payload = NULL, payload_bytes = NULL, finished_at = now(), locked_by = NULL, locked_until = NULL
                WHERE tenant_id = ${claim.tenantId} AND id = ${claim.id} AND status = 'running' AND locked_by = ${workerId}
                RETURNING id`
          : sql`UPDATE jobs SET status = 'queued', error_code = ${outcome.code}, error_message = ${outcome.message},
                  run_after = now() + ${`${outcome.delayMs} milliseconds`}::interval, locked_by = NULL, locked_until = NULL
                WHERE tenant_id = ${claim.tenantId} AND id = ${claim.id} AND status = 'running' AND locked_by = ${workerId}
                RETURNING id`,
      ),
    );
    // Only if this worker still held the job: otherwise the payload is another attempt's now.
    if (outcome.kind === "failed" && recorded.length > 0) await this.dropPayloadFile(claim, this.logger);
    this.observer?.finished(claim, outcome.kind);
  }

  /** After the job's end committed: its upload's file, if the backend keeps one, goes too. */
  private async dropPayloadFile(claim: ClaimedJob, log: Logger): Promise<void> {
    // A file left behind is only disk: the next start's sweep removes it (sweepPayloadFiles).
    await releasePayloads(this.db, [{ tenantId: claim.tenantId, jobId: claim.id }]).catch((error: unknown) => log.warn({ err: error }, "could not remove the job's payload file"));
  }
}
