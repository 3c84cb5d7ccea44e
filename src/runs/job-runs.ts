import type { RunKind, RunStep } from "../db/schema.js";
import type { JobAttemptRecorder } from "../jobs/job-contracts.js";
import type { RunningJob } from "../jobs/running-job.js";
import type { RunRecords } from "./run-records.js";

/**
 * One run record per job attempt that ran, built from the steps the attempt recorded on its job
 * (parse → chunk → embed → store for ingestion), so a queued upload and one ingested in the
 * request read the same in `GET /v1/runs`. The request id is the job's (`job:<id>`), shared by
 * its attempts; each attempt's run says how that attempt ended.
 */
export class JobRunRecorder implements JobAttemptRecorder {
  constructor(
    private readonly runs: RunRecords,
    /** The run kind of each job kind that is recorded (others are not). */
    private readonly kinds: Readonly<Record<string, RunKind>>,
    /** The model and provider the instance's workers use (the embedding model, for ingestion). */
    private readonly model: { provider: string; model: string },
  ) {}

  async attemptEnded(job: RunningJob, startedAt: Date, error?: unknown): Promise<void> {
    const kind = this.kinds[job.claim.kind];
    if (!kind) return;
    const run = this.runs.start(job.ctx, kind, { provider: this.model.provider, model: this.model.model }, startedAt);
    run.addSteps(job.attemptSteps.map((step) => withResult(step, job.result)));
    await run.finish(error);
  }
}

/** The stored document's id and outcome belong on the step that stored it. */
function withResult(step: RunStep, result: Record<string, unknown> | undefined): RunStep {
  if (step.name !== "store" || step.status !== "succeeded" || !result) return step;
  return { ...step, detail: { ...step.detail, ...result } };
}
