import type { StepRecorder } from "../core/step-recorder.js";
import type { TenantContext } from "../core/tenant-context.js";
import type { RunFields } from "../runs/run-recorder.js";
import type { DocumentIngestor, DocumentInput, IngestMeta, IngestResult, WithinStore } from "./ingest-document.js";
import type { SupportedMediaType } from "./parse-document.js";

/** An upload as the pipeline takes it: what was said about it, and where its bytes are. */
export interface PipelineUpload {
  title: string;
  mediaType: SupportedMediaType;
  byteSize: number;
  sourceId?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
  /** Read in the parse step: a request has the bytes in hand; a job loads its kept upload there. */
  read(): Promise<Uint8Array>;
}

/** A request's upload, its bytes in hand. */
export function uploadInHand({ bytes, ...about }: Omit<PipelineUpload, "byteSize" | "read"> & { bytes: Uint8Array }): PipelineUpload {
  return { ...about, byteSize: bytes.length, read: () => Promise.resolve(bytes) };
}

/**
 * How a durable job ends with its document (ingest-job.ts): marked succeeded inside the store
 * transaction, so "stored" and "job succeeded" commit together or not at all; or, when the content
 * is unchanged and nothing is written, in a store step of its own. A request has no such ending.
 */
export interface JobEnding {
  within: WithinStore;
  unchanged(result: IngestResult): Promise<void>;
}

export interface PipelineOptions extends IngestMeta {
  ending?: JobEnding | undefined;
  /**
   * A request's run record, told the embedding model once the upload has parsed (as before the
   * pipeline; a job attempt's run names it from the start, in ingest-job.ts).
   */
  run?: { set(fields: RunFields): void } | undefined;
}

/**
 * parse → chunk → embed → store: the one place ingestion runs in order, for an upload a request
 * waits for and a queued one alike, each step recorded through `recorder` — the request's run
 * record, or the RunningJob (core/step-recorder.ts). The route only chooses between running this
 * now and queueing a job that runs it.
 *
 * Feature flags come first, before anything is parsed or reserved, so a refused upload costs the
 * tenant nothing; a job checks again, as its tenant's settings may have changed while it waited.
 */
export async function ingestUpload(
  ingestor: DocumentIngestor,
  ctx: TenantContext,
  upload: PipelineUpload,
  recorder: StepRecorder,
  options: PipelineOptions,
): Promise<IngestResult> {
  await ingestor.admit(ctx, [upload.mediaType]);
  const input = await recorder.step(
    "parse",
    async (): Promise<DocumentInput> => {
      // Off the event loop, bounded in time and memory: a bomb is a 413/422 (a job fails once), never a frozen loop.
      const parsed = await ingestor.parse(ctx, await upload.read(), upload.mediaType, options.priority);
      return {
        title: upload.title,
        ...parsed,
        mediaType: upload.mediaType,
        byteSize: upload.byteSize,
        sourceId: upload.sourceId,
        metadata: upload.metadata,
      };
    },
    (doc) => ({ characters: doc.text.length, media_type: doc.mediaType }),
  );
  const model = ingestor.embeddingModel;
  options.run?.set({ provider: model.split(":")[0]!, model });
  const prepared = await recorder.step(
    "chunk",
    () => ingestor.prepare(ctx, input),
    (p) => (p.unchanged ? { unchanged: true } : { chunks: p.pieces.length }),
  );
  if (prepared.unchanged) {
    const result: IngestResult = { document: prepared.unchanged, outcome: "unchanged" };
    // Nothing to embed or write; a job still ends in a store step, where it marks itself done.
    const ending = options.ending;
    if (ending) await recorder.step("store", () => ending.unchanged(result));
    return result;
  }
  const vectors = await recorder.step("embed", () => ingestor.embed(ctx, prepared, options), (v) => ({ vectors: v.length }));
  return recorder.step("store", () => ingestor.store(ctx, prepared, vectors, options.ending?.within), (r) => ({
    document_id: r.document.id,
    outcome: r.outcome,
    chunks: r.document.chunkCount,
    version: r.document.version,
  }));
}
