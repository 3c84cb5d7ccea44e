import { randomUUID } from "node:crypto";
import type { Database } from "../db/database.js";
import type { BudgetGuard } from "../metering/budget-guard.js";
import { estimateTokens, type UsageRecord } from "../metering/usage-event.js";
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
    const { hits, metered } = await this.db.withTenant(
      ctx,
      async (scope) => {
        const hits = await hybridSearch(scope, {
          text,
          vector,
          model: this.embeddings.model,
          dimensions: this.embeddings.dimensions,
          k,
        });
        // Metered in the search's own transaction (one transaction a search, not two), after the
        // search so that the tenant's counter rows are locked only for the commit.
        return { hits, metered: cached ? undefined : await this.budgets.recordWithin(scope, [this.queryUsage(text)]) };
      },
      { efSearch: this.options.efSearch },
    );
    await metered?.committed();
    if (this.db.mutations.disableAssemblyAssertion) return hits;
    return assertChunksBelongTo(ctx, hits, this.securityEvents);
  }

  /** The query's vector: from the tenant's cache, or embedded now (and then to be metered by the caller). */
  private async embedQuery(ctx: TenantContext, text: string): Promise<{ vector: readonly number[]; cached: boolean }> {
    const parts = { model: this.embeddings.model, input: text };
    const cached = await this.caches.queryEmbeddings.get(ctx, parts);
    if (cached) return { vector: cached.vector, cached: true };
    const [vector] = await this.embeddings.embed([text], { id: ctx.tenantId, priority: "interactive" });
    await this.caches.queryEmbeddings.set(ctx, parts, { vector: vector! });
    return { vector: vector!, cached: false };
  }

  /**
   * A query embedding's usage: metered, but without a reservation of its own — a query is a few
   * tokens, and the chat that follows reserves its budget before the expensive call.
   */
  private queryUsage(text: string): UsageRecord {
    return {
      eventId: `query:${randomUUID()}:embed_query`,
      feature: "embed_query",
      provider: this.embeddings.model.split(":")[0]!,
      model: this.embeddings.model,
      inputTokens: estimateTokens(text),
      outputTokens: 0,
      status: "charged",
      usageEstimated: true,
    };
  }
}
