import type { ClaimedJob } from "./fair-scheduler.js";
import type { RunningJob } from "./running-job.js";

/* What the job runner agrees on with its handlers, its configuration and its observers. */

/** Does the work of one kind of job, step by step, through the RunningJob it is given. */
export interface JobHandler {
  readonly kind: string;
  run(job: RunningJob): Promise<void>;
}

export interface JobRunnerOptions {
  /** Jobs this instance works on at once (0: this instance only serves HTTP). */
  workers: number;
  /**
   * Workers besides those, kept for tenants with no job running (see FairScheduler): a tenant's
   * single upload starts at once even while another tenant's bulk jobs fill every regular worker.
   * Only started when there are regular workers.
   */
  reservedWorkers: number;
  /** How long a claimed job stays this worker's without a heartbeat. */
  leaseMs: number;
  /** How often an idle worker looks for work queued by other instances. */
  pollMs: number;
  /** First retry delay; doubled per attempt, with jitter, capped at a minute. */
  retryBaseMs: number;
}

/** Told when this instance's workers claim and end job attempts (the metrics). */
export interface JobObserver {
  claimed(job: ClaimedJob): void;
  finished(job: ClaimedJob, outcome: "succeeded" | "failed" | "retry"): void;
}
