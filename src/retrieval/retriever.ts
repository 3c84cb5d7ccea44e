import { randomUUID } from "node:crypto";
import type { Database } from "../db/database.js";
import type { BudgetGuard } from "../metering/budget-guard.js";
import { estimateTokens } from "../metering/usage-event.js";
import type { TenantCaches } from "../cache/tenant-caches.js";
import type { EmbeddingProvider } from "../embeddings/provider.js";
import type { SecurityEvents } from "../observability/security-events.js";
import type { TenantContext } from "../core/tenant-context.js";
import { assertChunksBelongTo } from "./assert-chunks-belong-to.js";
import { hybridSearch, type SearchHit } from "./hybrid-search.js";

export interface RetrieverOptions {
  efSearch: number;
}

/** Told how the query embedding went (a chat run records it as a step). */
export interface RetrievalObserver {
  note(step: "query_embedding", detail: { model: string; cached: boolean }, durationMs: number): void;
}

/**
 * The one entry point to a tenant's index. Takes the verified context (never a tenant id), embeds
 * the query through the tenant-keyed cache, searches inside `withTenant`, and runs the ownership
 * assertion on what comes back.
 */
export class Retriever {
  constructor(
    private readonly db: Database,
    private readonly embeddings: EmbeddingProvider,
    private readonly caches: TenantCaches,
    private readonly securityEvents: SecurityEvents,
    private readonly budgets: BudgetGuard,
    private readonly options: RetrieverOptions,
  ) {}

  get model(): string {
    return this.embeddings.model;
  }

  async search(ctx: TenantContext, text: string, k: number, observer?: RetrievalObserver): Promise<readonly SearchHit[]> {
    const embedStarted = performance.now();
    const { vector, cached } = await this.embedQuery(ctx, text);
    observer?.note("query_embedding", { model: this.embeddings.model, cached }, performance.now() - embedStarted);
    const hits = await this.db.withTenant(
      ctx,
      (scope) =>
        hybridSearch(scope, {
          text,
          vector,
          model: this.embeddings.model,
          dimensions: this.embeddings.dimensions,
          k,
        }),
      { efSearch: this.options.efSearch },
    );
    if (this.db.mutations.disableAssemblyAssertion) return hits;
    return assertChunksBelongTo(ctx, hits, this.securityEvents);
  }

  private async embedQuery(ctx: TenantContext, text: string): Promise<{ vector: readonly number[]; cached: boolean }> {
    const parts = { model: this.embeddings.model, input: text };
    const cached = await this.caches.queryEmbeddings.get(ctx, parts);
    if (cached) return { vector: cached.vector, cached: true };
    const [vector] = await this.embeddings.embed([text], { id: ctx.tenantId, priority: "interactive" });
    await this.caches.queryEmbeddings.set(ctx, parts, { vector: vector! });
    // Metered, but without a reservation of its own: a query is a few tokens, and the chat that
    // follows reserves its budget before the expensive call.
    await this.budgets.record(ctx, [
      {
        eventId: `query:${randomUUID()}:embed_query`,
        feature: "embed_query",
        provider: this.embeddings.model.split(":")[0]!,
        model: this.embeddings.model,
        inputTokens: estimateTokens(text),
        outputTokens: 0,
        status: "charged",
        usageEstimated: true,
      },
    ]);
    return { vector: vector!, cached: false };
  }
}
