import type { JobHandler } from "../jobs/job-contracts.js";
import type { RunningJob } from "../jobs/running-job.js";
import type { JobPriority, NewJob } from "../jobs/job-queue.js";
import type { DocumentIngestor, DocumentInput } from "./ingest-document.js";
import type { SupportedMediaType } from "./parse-document.js";

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
 * parse → chunk → embed → store, each a recorded step. The store step writes the document and
 * marks the job succeeded in one transaction, so a worker killed at any point leaves either no
 * document (the job runs again from the kept upload) or the document and a finished job — never
 * half a document, never two.
 */
export class IngestJobHandler implements JobHandler {
  readonly kind = INGEST_DOCUMENT_JOB;

  constructor(private readonly ingestor: DocumentIngestor) {}

  async run(job: RunningJob): Promise<void> {
    const stored = job.input as unknown as StoredInput;
    const priority: JobPriority = job.claim.priority === 0 ? "interactive" : "bulk";
    const input = await job.step(
      "parse",
      async (): Promise<DocumentInput> => {
        const bytes = await job.loadPayload();
        if (!bytes) throw new Error("The job's upload is missing.");
        // In the parser's worker thread, bounded in time and memory: a bomb fails the job (422), once.
        const parsed = await this.ingestor.parse(job.ctx, bytes, stored.media_type, priority);
        return {
          title: stored.title,
          ...parsed,
          mediaType: stored.media_type,
          byteSize: stored.byte_size,
          sourceId: stored.source_id,
          metadata: stored.metadata,
        };
      },
      (doc) => ({ characters: doc.text.length, media_type: doc.mediaType }),
    );
    const prepared = await job.step(
      "chunk",
      () => this.ingestor.prepare(job.ctx, input),
      (p) => (p.unchanged ? { unchanged: true } : { chunks: p.pieces.length }),
    );
    if (prepared.unchanged) {
      const document = prepared.unchanged;
      await job.step("store", () => job.complete({ document_id: document.id, outcome: "unchanged" }), () => ({}), { final: true });
      return;
    }
    const vectors = await job.step(
      "embed",
      () => this.ingestor.embed(job.ctx, prepared, { operationId: job.operationId, chargeId: job.chargeId, lease: job, priority }),
      (v) => ({ vectors: v.length }),
    );
    await job.step(
      "store",
      () =>
        this.ingestor.store(job.ctx, prepared, vectors, (scope, result) =>
          job.completeWithin(
            scope,
            { document_id: result.document.id, outcome: result.outcome },
            { chunks: result.document.chunkCount, version: result.document.version },
          ),
        ),
      () => ({}),
      { final: true },
    );
  }
}
