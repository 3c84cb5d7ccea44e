import type { RunStep } from "../db/schema.js";
import type { TenantContext } from "../core/tenant-context.js";
import type { JobHandler } from "../jobs/job-contracts.js";
import { LeaseLostError, type RunningJob } from "../jobs/running-job.js";
import type { JobPriority, JobQueue, JobView, NewJob } from "../jobs/job-queue.js";
import type { RunRecords } from "../runs/run-records.js";
import type { DocumentIngestor, IngestResult } from "./ingest-document.js";
import type { SupportedMediaType } from "./parse-document.js";
import { ingestUpload, type PipelineUpload } from "./pipeline.js";
import { featuresNeeded, refuseDisabledFeatures } from "./upload-features.js";

export const INGEST_DOCUMENT_JOB = "ingest_document";

/** An upload as it waits in the queue: the original bytes, and what was said about them. */
export interface QueuedUpload {
  title: string;
  mediaType: SupportedMediaType;
  bytes: Uint8Array;
  sourceId?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
}

interface StoredInput {
  title: string;
  media_type: SupportedMediaType;
  byte_size: number;
  source_id?: string;
  metadata?: Record<string, unknown>;
}

/**
 * The job for one upload. Jobs on the same `source_id` are serialised (one runs at a time), and
 * only a worker with the same embedding model takes it.
 */
export function ingestJob(upload: QueuedUpload, priority: JobPriority, embeddingModel: string): NewJob {
  const input: StoredInput = {
    title: upload.title,
    media_type: upload.mediaType,
    byte_size: upload.bytes.length,
    ...(upload.sourceId ? { source_id: upload.sourceId } : {}),
    ...(upload.metadata ? { metadata: upload.metadata } : {}),
  };
  return {
    kind: INGEST_DOCUMENT_JOB,
    priority,
    serialKey: upload.sourceId ? `source:${upload.sourceId}` : undefined,
    requires: embeddingModel,
    input: input as unknown as Record<string, unknown>,
    payload: upload.bytes,
  };
}

/**
 * Queues uploads as one batch of ingest jobs (accepted whole or refused whole). Feature flags are
 * checked in the enqueue transaction before the queue's caps and budget (jobs/queue-caps.ts): an
 * upload the tenant's settings turn off (403) is never queued, so it can only be refused, never
 * fail later as a job. A resent batch (same Idempotency-Key) still returns the jobs it made.
 */
export function queueUploads(
  queue: JobQueue,
  ctx: TenantContext,
  uploads: readonly QueuedUpload[],
  options: { priority: JobPriority; embeddingModel: string; batchId: string },
): Promise<{ jobs: JobView[]; replayed: boolean }> {
  const flags = featuresNeeded(uploads.map((upload) => upload.mediaType));
  return queue.enqueue(
    ctx,
    uploads.map((upload) => ingestJob(upload, options.priority, options.embeddingModel)),
    options.batchId,
    (scope) => refuseDisabledFeatures(scope, flags),
  );
}

/**
 * Runs one upload through the ingestion pipeline (pipeline.ts), the RunningJob recording its
 * steps onto the job. The store step writes the document and marks the job succeeded in one
 * transaction, so a worker killed at any point leaves either no document (the job runs again from
 * the kept upload) or the document and a finished job — never half a document, never two.
 *
 * Each attempt that ran is also an ingest run (GET /v1/runs), as an upload ingested in its request
 * is: recorded here, where the job's run is known to be an ingestion, under the job's request id
 * (`job:<id>`) shared by its attempts.
 */
export class IngestJobHandler implements JobHandler {
  readonly kind = INGEST_DOCUMENT_JOB;

  constructor(
    private readonly ingestor: DocumentIngestor,
    /** Where each attempt's run is recorded (none: not recorded). */
    private readonly runs?: RunRecords,
  ) {}

  async run(job: RunningJob): Promise<void> {
    const startedAt = new Date();
    try {
      await ingestUpload(this.ingestor, job.ctx, queuedUploadOf(job), job, {
        operationId: job.operationId,
        chargeId: job.chargeId,
        lease: job,
        priority: job.claim.priority === 0 ? "interactive" : "bulk",
        ending: {
          within: (scope, result) =>
            job.completeWithin(scope, jobResultOf(result), { chunks: result.document.chunkCount, version: result.document.version }),
          unchanged: (result) => job.complete(jobResultOf(result)),
        },
      });
    } catch (error) {
      // A lost lease is the attempt of the worker that took the job over: that one is recorded.
      if (!(error instanceof LeaseLostError)) await this.recordAttempt(job, startedAt, error);
      throw error;
    }
    await this.recordAttempt(job, startedAt);
  }

  /** The attempt's run: the steps it recorded on the job, as the tenant reads them there. Never throws. */
  private async recordAttempt(job: RunningJob, startedAt: Date, error?: unknown): Promise<void> {
    if (!this.runs) return;
    const model = this.ingestor.embeddingModel;
    const run = this.runs.start(job.ctx, "ingest", { provider: model.split(":")[0]!, model }, startedAt);
    run.addSteps(job.attemptSteps.map((step) => withResult(step, job.result)));
    await run.finish(error);
  }
}

/** The upload the job keeps: loaded in the parse step, so a missing one fails that step. */
function queuedUploadOf(job: RunningJob): PipelineUpload {
  const stored = job.input as unknown as StoredInput;
  return {
    title: stored.title,
    mediaType: stored.media_type,
    byteSize: stored.byte_size,
    sourceId: stored.source_id,
    metadata: stored.metadata,
    read: async () => {
      const bytes = await job.loadPayload();
      if (!bytes) throw new Error("The job's upload is missing.");
      return bytes;
    },
  };
}

/** A job's result as the tenant reads it (GET /v1/jobs/:id); the store step keeps chunks and version. */
function jobResultOf(result: IngestResult): Record<string, unknown> {
  return { document_id: result.document.id, outcome: result.outcome };
}

/** In the run, the stored document's id and outcome belong on the step that stored it. */
function withResult(step: RunStep, result: Record<string, unknown> | undefined): RunStep {
  if (step.name !== "store" || step.status !== "succeeded" || !result) return step;
  return { ...step, detail: { ...step.detail, ...result } };
}
