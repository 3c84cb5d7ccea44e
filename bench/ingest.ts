import { randomUUID } from "node:crypto";
import { chunkText } from "../src/ingest/chunk-text.js";
import { DocumentIngestor } from "../src/ingest/ingest-document.js";
import { ingestUpload, uploadInHand } from "../src/ingest/pipeline.js";
import { NOT_RECORDED } from "../src/runs/run-recorder.js";
import { normalizeText } from "../src/ingest/parse-document.js";
import type { EmbeddingProvider } from "../src/embeddings/provider.js";
import type { BenchBackend } from "./backends.js";
import type { Corpus } from "./corpus.js";
import { since, summarize, type LatencySummary } from "./stats.js";
import type { GeneratedDocument } from "./text-corpus.js";

export interface ThroughputResult {
  docs: number;
  chunks: number;
  totalMs: number;
  chunksPerSecond: number;
  perDocument: LatencySummary;
}

export interface IngestResult {
  endToEnd: ThroughputResult;
  embedOnly: ThroughputResult;
  storeOnly: ThroughputResult;
}

/**
 * Vectors the real model already produced for these exact inputs, served back by input text. It
 * lets the store-only run go through the very same DocumentIngestor (chunk → store in one tenant
 * transaction) without paying for the model a second time; any unknown input is an error.
 */
class PrecomputedEmbeddings implements EmbeddingProvider {
  constructor(
    readonly model: string,
    readonly dimensions: number,
    private readonly vectors: ReadonlyMap<string, number[]>,
  ) {}

  async embed(texts: readonly string[]): Promise<number[][]> {
    return texts.map((t) => {
      const v = this.vectors.get(t);
      if (!v) throw new Error("bench: no precomputed vector for an input");
      return v;
    });
  }
}

/** The exact strings DocumentIngestor embeds for a document (heading line + chunk text). */
function embeddingInputs(markdown: string): string[] {
  return chunkText(normalizeText(markdown)).map((p) => (p.heading ? `${p.heading}\n${p.text}` : p.text));
}

/**
 * Section 1. Documents are ingested one after another (one stream), as an upload request would:
 * end to end (parse → chunk → embed with the real model → store), the embedding alone, and the
 * store alone, so the bottleneck shows. End-to-end documents alternate between the measured
 * large and small tenants (they become those tenants' real documents); the store-only copies go to
 * a scratch tenant.
 */
export async function benchIngest(backend: BenchBackend, corpus: Corpus, documents: readonly GeneratedDocument[]): Promise<IngestResult> {
  const { db, embeddings, budgets } = backend.fence;
  const limits = { maxTextChars: backend.config.limits.maxTextChars };
  const ingestor = new DocumentIngestor(db, embeddings, budgets, limits);

  // Warm-up (not measured): first model call, first insert into each table, statement paths.
  await ingestDocument(ingestor, corpus.scratch.ctx, { title: "warm-up", markdown: documents[0]!.markdown });

  // The three stages alternate per document, so load drift on a shared machine falls on all alike.
  const vectors = new Map<string, number[]>();
  const storeIngestor = new DocumentIngestor(db, new PrecomputedEmbeddings(embeddings.model, embeddings.dimensions, vectors), budgets, limits);
  const stages = { endToEnd: new Stage(), embedOnly: new Stage(), storeOnly: new Stage() };
  for (const [i, doc] of documents.entries()) {
    const tenant = i % 2 === 0 ? corpus.large : corpus.small;
    await stages.endToEnd.run(() => ingestDocument(ingestor, tenant.ctx, doc));
    await stages.embedOnly.run(async () => {
      const inputs = embeddingInputs(doc.markdown);
      const out = await embeddings.embed(inputs);
      inputs.forEach((input, j) => vectors.set(input, out[j]!));
      return inputs.length;
    });
    await stages.storeOnly.run(() => ingestDocument(storeIngestor, corpus.scratch.ctx, doc));
  }
  return {
    endToEnd: stages.endToEnd.result(),
    embedOnly: stages.embedOnly.result(),
    storeOnly: stages.storeOnly.result(),
  };
}

/** Per-document timings of one ingest stage; `run` returns the chunks the document produced. */
class Stage {
  private readonly times: number[] = [];
  private chunks = 0;

  async run(fn: () => Promise<number>): Promise<void> {
    const start = performance.now();
    this.chunks += await fn();
    this.times.push(since(start));
  }

  result(): ThroughputResult {
    const totalMs = this.times.reduce((s, v) => s + v, 0);
    return {
      docs: this.times.length,
      chunks: this.chunks,
      totalMs,
      chunksPerSecond: (this.chunks * 1000) / totalMs,
      perDocument: summarize(this.times),
    };
  }
}
/** What the upload route does with a Markdown file: the ingestion pipeline, parse → chunk → embed → store. */
async function ingestDocument(
  ingestor: DocumentIngestor,
  ctx: Parameters<DocumentIngestor["prepare"]>[0],
  doc: GeneratedDocument,
): Promise<number> {
  const bytes = new TextEncoder().encode(doc.markdown);
  const upload = uploadInHand({ title: doc.title, mediaType: "text/markdown", bytes });
  const { document, outcome } = await ingestUpload(ingestor, ctx, upload, NOT_RECORDED, { operationId: `bench:${randomUUID()}`, priority: "bulk" });
  if (outcome !== "created") throw new Error(`bench: expected a new document, got ${outcome}`);
  return document.chunkCount;
}
