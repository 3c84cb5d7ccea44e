import { createHash } from "node:crypto";
import { and, eq, sql } from "drizzle-orm";
import type { Database, TenantScope } from "../db/database.js";
import { chunks, documents, type DocumentRow } from "../db/schema.js";
import type { EmbeddingProvider } from "../embeddings/provider.js";
import { PayloadTooLargeError, ProviderUnavailableError, publicErrorOf, ValidationError } from "../core/errors.js";
import type { BudgetGuard } from "../metering/budget-guard.js";
import { estimateTokens } from "../metering/usage-event.js";
import { bumpDataVersion, forgetCachedContent } from "../tenancy/data-version.js";
import type { TenantCaches } from "../cache/tenant-caches.js";
import type { TenantContext } from "../core/tenant-context.js";
import { embeddingInputOf, type TextChunk } from "./chunk-text.js";
import { INLINE_PARSE_MAX_BYTES, InlineDocumentParser, type DocumentParser, type ParsedDocument } from "./document-parser.js";
import type { SupportedMediaType } from "./parse-document.js";
import { featuresNeeded, refuseDisabledFeatures } from "./upload-features.js";

/** An upload after parsing: its normalised text and chunks (a DocumentParser's output), and what was said about it. */
export interface DocumentInput {
  title: string;
  text: string;
  chunks: TextChunk[];
  mediaType: SupportedMediaType;
  byteSize: number;
  sourceId?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
}

export type IngestOutcome = "created" | "replaced" | "unchanged";

export interface IngestResult {
  document: DocumentRow;
  outcome: IngestOutcome;
}

/** A document normalised, hashed and chunked: everything the embed and store steps need. */
export interface PreparedDocument {
  input: DocumentInput;
  contentHash: string;
  pieces: TextChunk[];
  /** Set when the same content is already stored for this `source_id`: nothing to do. */
  unchanged?: DocumentRow;
}

export interface IngestMeta {
  /** One operation, one charge (derived from Idempotency-Key, or from the job and its attempt). */
  operationId: string;
  /**
   * What the embedding is charged as, when it outlives the operation: a job's attempts each
   * reserve their own budget, but the job is one charge however many attempts embedded it.
   */
  chargeId?: string | undefined;
  /** A job attempt's hold on its job: an attempt that lost it is never charged. */
  lease?: AttemptLease | undefined;
  /** Uploads a person waits for are embedded before bulk (batch) work. */
  priority: "interactive" | "bulk";
}

/** See RunningJob (jobs/job-runner.ts), which is one. */
export interface AttemptLease {
  /** Locks the job in the caller's transaction; false once another worker has taken it over. */
  stillHeld(scope: TenantScope): Promise<boolean>;
  lostError(): Error;
}

/**
 * Runs inside the store transaction, after the document is written: the durable job marks itself
 * done there, so "stored" and "job succeeded" commit together or not at all.
 */
export type WithinStore = (scope: TenantScope, result: IngestResult) => Promise<void>;

/**
 * The steps of ingestion — admit, parse, chunk (`prepare`), embed, store — each on its own; the one
 * place they run in order is the pipeline (pipeline.ts), for a request and a job alike. The
 * expensive embedding happens before the transaction opens; the store is one transaction, so a
 * document is either fully stored with all its chunks or not at all, and a new version for the
 * same `source_id` replaces the old one atomically.
 */
export class DocumentIngestor {
  constructor(
    private readonly db: Database,
    private readonly embeddings: EmbeddingProvider,
    private readonly budgets: BudgetGuard,
    private readonly limits: { maxTextChars: number },
    /** Where uploads are parsed: worker threads on Node; inline (size-capped) where there are none. */
    private readonly parser: DocumentParser = new InlineDocumentParser({ maxTextChars: limits.maxTextChars, maxBytes: INLINE_PARSE_MAX_BYTES }),
    /** Emptied of the tenant's entries after a replacement, as after a delete (the old text is gone). */
    private readonly caches?: TenantCaches,
  ) {}

  /**
   * Refuses (403) uploads of a media type the tenant's settings turn off (a PDF without
   * `ingest.pdf`), in a transaction of its own; only uploads a flag governs read the settings.
   */
  async admit(ctx: TenantContext, mediaTypes: Iterable<SupportedMediaType>): Promise<void> {
    const flags = featuresNeeded(mediaTypes);
    if (flags.length > 0) await this.db.withTenant(ctx, (scope) => refuseDisabledFeatures(scope, flags));
  }

  /**
   * extract → normalise → chunk, bounded in time and memory by the parser and queued fairly by
   * tenant. The pipeline parses here, for a request and a job alike.
   */
  parse(ctx: TenantContext, bytes: Uint8Array, mediaType: SupportedMediaType, priority: IngestMeta["priority"]): Promise<ParsedDocument> {
    return this.parser.parse(bytes, mediaType, { id: ctx.tenantId, priority });
  }

  /** The model documents are embedded with (a queued upload may only run where it is the same). */
  get embeddingModel(): string {
    return this.embeddings.model;
  }

  /**
   * Checks the parser's output against the limits, hashes it and skips unchanged content. No
   * parsing here: `input` is already normalised and chunked (see `parse`), off the event loop.
   */
  async prepare(ctx: TenantContext, input: DocumentInput): Promise<PreparedDocument> {
    const { text } = input;
    if (!text) throw new ValidationError("The document contains no text.");
    if (text.length > this.limits.maxTextChars) throw new PayloadTooLargeError(this.limits.maxTextChars, "characters");
    const contentHash = hashContent(input.title, text);

    // Identical content for the same source: nothing to embed, nothing to write.
    if (input.sourceId) {
      const existing = await this.db.withTenant(ctx, (scope) => findBySource(scope, input.sourceId!));
      if (existing && existing.contentHash === contentHash && existing.embeddingModel === this.embeddings.model) {
        return { input, contentHash, pieces: [], unchanged: existing };
      }
    }
    return { input, contentHash, pieces: input.chunks };
  }

  /**
   * Stores the document and its chunks in one transaction. Two first uploads of one source_id can
   * race to insert; the loser retries once and then finds the winner's row (unique index on
   * tenant_id, source_id), replacing or keeping it.
   */
  async store(ctx: TenantContext, prepared: PreparedDocument, vectors: number[][], within?: WithinStore): Promise<IngestResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.storeOnce(ctx, prepared, vectors, within);
        if (result.outcome === "replaced") await this.caches?.purgeTenant(ctx.tenantId);
        return result;
      } catch (error) {
        if (attempt >= 2 || !isUniqueViolation(error)) throw error;
      }
    }
  }

  /**
   * Embedding is the expensive step, so the budget is reserved before it: a document that would
   * take the tenant past its cap is refused (402) before anything is embedded or stored. The
   * embedding is charged once it has happened, even if storing then fails — unless the job
   * attempt doing it has lost its job to another worker meanwhile: then that worker's attempt is
   * the one charged, and this one releases its hold and records nothing.
   */
  async embed(ctx: TenantContext, prepared: PreparedDocument, meta: IngestMeta): Promise<number[][]> {
    const { pieces } = prepared;
    const { operationId, lease } = meta;
    const chargedAs = `${meta.chargeId ?? operationId}:embed_documents`;
    const texts = pieces.map((p) => embeddingInputOf(p, this.parser.chunkOptions));
    const inputTokens = texts.reduce((sum, t) => sum + estimateTokens(t), 0);
    const provider = this.embeddings.model.split(":")[0]!;
    const hold = await this.budgets.reserve(ctx, {
      feature: "embed_documents",
      operationId,
      provider,
      preferredModel: this.embeddings.model,
      inputTokens,
      maxOutputTokens: 0,
      chargedAs,
    });
    // A failure stays per attempt: a later attempt's success must still be recorded as charged.
    const record = { eventId: `${operationId}:embed_documents`, feature: "embed_documents" as const, provider, model: this.embeddings.model };
    const onlyIf = lease && ((scope: TenantScope) => lease.stillHeld(scope));
    let settled = false;
    try {
      const flow = { id: ctx.tenantId, weight: hold.settings.plan.schedulingWeight, priority: meta.priority };
      const vectors = await this.embeddings.embed(texts, flow);
      const charged = { ...record, eventId: chargedAs, inputTokens, outputTokens: 0, status: "charged" as const, usageEstimated: true };
      const held = await this.budgets.settle(ctx, hold, [charged], { onlyIf });
      settled = true;
      if (!held) throw lease!.lostError();
      return vectors;
    } catch (error) {
      if (settled) throw error;
      // A call the provider's breaker refused never reached it: nothing to put on the ledger.
      const reachedProvider = !(error instanceof ProviderUnavailableError);
      const held = await this.budgets.settle(
        ctx,
        hold,
        reachedProvider
          ? [{ ...record, inputTokens: 0, outputTokens: 0, status: "failed", error: publicErrorOf(error).message.slice(0, 300) }]
          : [],
        { onlyIf },
      );
      throw held ? error : lease!.lostError();
    }
  }

  private storeOnce(
    ctx: TenantContext,
    prepared: PreparedDocument,
    vectors: number[][],
    within: WithinStore | undefined,
  ): Promise<IngestResult> {
    const { input, contentHash, pieces } = prepared;
    return this.db.withTenant(ctx, async (scope) => {
      const finish = async (result: IngestResult) => {
        await within?.(scope, result);
        return result;
      };
      const existing = input.sourceId ? await findBySource(scope, input.sourceId, { forUpdate: true }) : undefined;
      if (existing && existing.contentHash === contentHash && existing.embeddingModel === this.embeddings.model) {
        return finish({ document: existing, outcome: "unchanged" });
      }
      const fields = {
        title: input.title,
        mediaType: input.mediaType,
        contentHash,
        byteSize: input.byteSize,
        chunkCount: pieces.length,
        embeddingModel: this.embeddings.model,
        metadata: input.metadata ?? {},
      };
      let document: DocumentRow;
      if (existing) {
        await scope.tx
          .delete(chunks)
          .where(and(scope.owns(chunks.tenantId), eq(chunks.documentId, existing.id)));
        [document] = (await scope.tx
          .update(documents)
          .set({ ...fields, version: sql`${documents.version} + 1`, updatedAt: new Date() })
          .where(and(scope.owns(documents.tenantId), eq(documents.id, existing.id)))
          .returning()) as [DocumentRow];
      } else {
        [document] = (await scope.tx
          .insert(documents)
          .values({ tenantId: scope.tenantId, sourceId: input.sourceId ?? null, ...fields })
          .returning()) as [DocumentRow];
      }
      if (pieces.length > 0) {
        await scope.tx.insert(chunks).values(
          pieces.map((piece, i) => ({
            tenantId: scope.tenantId,
            documentId: document.id,
            position: piece.position,
            heading: piece.heading,
            text: piece.text,
            embeddingModel: this.embeddings.model,
            embedding: vectors[i]!,
          })),
        );
      }
      // A replacement removes the old text: every cached entry that may quote it becomes
      // unreachable at commit (as on delete); a new document only makes cached answers stale.
      await (existing ? forgetCachedContent(scope) : bumpDataVersion(scope));
      return finish({ document, outcome: existing ? "replaced" : "created" });
    });
  }
}

async function findBySource(
  scope: TenantScope,
  sourceId: string,
  options: { forUpdate?: boolean } = {},
): Promise<DocumentRow | undefined> {
  const query = scope.tx
    .select()
    .from(documents)
    .where(and(scope.owns(documents.tenantId), eq(documents.sourceId, sourceId)));
  const [row] = options.forUpdate ? await query.for("update") : await query;
  return row;
}

function isUniqueViolation(error: unknown): boolean {
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
    if ((e as { code?: string }).code === "23505") return true;
  }
  return false;
}

function hashContent(title: string, text: string): string {
  return createHash("sha256").update(title).update("\u0000").update(text).digest("hex");
}
