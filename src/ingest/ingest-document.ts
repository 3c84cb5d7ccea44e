import { createHash } from "node:crypto";
import { and, eq, sql } from "drizzle-orm";
import type { Database, TenantScope } from "../db/database.js";
import { chunks, documents, type DocumentRow } from "../db/schema.js";
import type { EmbeddingProvider } from "../embeddings/provider.js";
import { FeatureDisabledError, PayloadTooLargeError, ProviderUnavailableError, ValidationError } from "../errors.js";
import type { BudgetGuard } from "../limits/budget-guard.js";
import { estimateTokens } from "../metering/usage-event.js";
import { featureEnabled } from "../plans/tenant-settings.js";
import { bumpDataVersion } from "../tenancy/data-version.js";
import type { TenantContext } from "../tenancy/tenant-context.js";
import { chunkText, DEFAULT_CHUNK_OPTIONS, type ChunkOptions, type TextChunk } from "./chunk-text.js";
import { normalizeText, type SupportedMediaType } from "./parse-document.js";

export interface DocumentInput {
  title: string;
  text: string;
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

/**
 * parse → chunk → embed → store. The expensive embedding happens before the transaction opens;
 * the store is one transaction, so a document is either fully stored with all its chunks or not
 * at all, and a new version for the same `source_id` replaces the old one atomically.
 */
export class DocumentIngestor {
  constructor(
    private readonly db: Database,
    private readonly embeddings: EmbeddingProvider,
    private readonly budgets: BudgetGuard,
    private readonly limits: { maxTextChars: number },
    private readonly chunkOptions: ChunkOptions = DEFAULT_CHUNK_OPTIONS,
  ) {}

  async ingest(ctx: TenantContext, input: DocumentInput, meta: { operationId: string }): Promise<IngestResult> {
    const text = normalizeText(input.text);
    if (!text) throw new ValidationError("The document contains no text.");
    if (text.length > this.limits.maxTextChars) throw new PayloadTooLargeError(this.limits.maxTextChars);
    const contentHash = hashContent(input.title, text);

    // Identical content for the same source: nothing to embed, nothing to write.
    if (input.sourceId) {
      const existing = await this.db.withTenant(ctx, (scope) => findBySource(scope, input.sourceId!));
      if (existing && existing.contentHash === contentHash && existing.embeddingModel === this.embeddings.model) {
        return { document: existing, outcome: "unchanged" };
      }
    }

    const pieces = chunkText(text, this.chunkOptions);
    const vectors = await this.embedWithinBudget(ctx, input, pieces, meta.operationId);

    // Two first uploads of one source_id can race to insert; the loser retries once and then
    // finds the winner's row (unique index on tenant_id, source_id), replacing or keeping it.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.store(ctx, input, { contentHash, pieces, vectors });
      } catch (error) {
        if (attempt >= 2 || !isUniqueViolation(error)) throw error;
      }
    }
  }

  /**
   * Embedding is the expensive step, so the budget is reserved before it: a document that would
   * take the tenant past its cap is refused (402) before anything is embedded or stored. The
   * embedding is charged once it has happened, even if storing then fails.
   */
  private async embedWithinBudget(
    ctx: TenantContext,
    input: DocumentInput,
    pieces: TextChunk[],
    operationId: string,
  ): Promise<number[][]> {
    const texts = pieces.map((p) => (p.heading ? `${p.heading}\n${p.text}` : p.text));
    const inputTokens = texts.reduce((sum, t) => sum + estimateTokens(t), 0);
    const provider = this.embeddings.model.split(":")[0]!;
    const hold = await this.budgets.reserve(ctx, {
      feature: "embed_documents",
      operationId,
      provider,
      preferredModel: this.embeddings.model,
      inputTokens,
      maxOutputTokens: 0,
    });
    const record = { eventId: `${operationId}:embed_documents`, feature: "embed_documents" as const, provider, model: this.embeddings.model };
    if (input.mediaType === "application/pdf" && !featureEnabled(hold.settings, "ingest.pdf")) {
      await this.budgets.settle(ctx, hold, []);
      throw new FeatureDisabledError("ingest.pdf");
    }
    try {
      const vectors = await this.embeddings.embed(texts);
      await this.budgets.settle(ctx, hold, [{ ...record, inputTokens, outputTokens: 0, status: "charged", usageEstimated: true }]);
      return vectors;
    } catch (error) {
      // A call the provider's breaker refused never reached it: nothing to put on the ledger.
      const reachedProvider = !(error instanceof ProviderUnavailableError);
      await this.budgets.settle(
        ctx,
        hold,
        reachedProvider
          ? [{ ...record, inputTokens: 0, outputTokens: 0, status: "failed", error: (error as Error).message.slice(0, 300) }]
          : [],
      );
      throw error;
    }
  }

  private store(
    ctx: TenantContext,
    input: DocumentInput,
    prepared: { contentHash: string; pieces: TextChunk[]; vectors: number[][] },
  ): Promise<IngestResult> {
    const { contentHash, pieces, vectors } = prepared;
    return this.db.withTenant(ctx, async (scope) => {
      const existing = input.sourceId ? await findBySource(scope, input.sourceId, { forUpdate: true }) : undefined;
      if (existing && existing.contentHash === contentHash && existing.embeddingModel === this.embeddings.model) {
        return { document: existing, outcome: "unchanged" as const };
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
      await bumpDataVersion(scope);
      return { document, outcome: existing ? ("replaced" as const) : ("created" as const) };
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
