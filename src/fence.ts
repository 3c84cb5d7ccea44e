import type { OpenAPIHono } from "@hono/zod-openapi";
import { createApp } from "./app.js";
import { TenantCaches } from "./cache/tenant-caches.js";
import { ChatService } from "./chat/chat-service.js";
import { LlmClient } from "./chat/llm-client.js";
import type { FenceConfig } from "./config.js";
import { connectDatabase } from "./db/connect.js";
import type { Database, IsolationMutations } from "./db/database.js";
import { runMigrations } from "./db/migrate.js";
import { ensureVectorIndex } from "./db/vector-index.js";
import { createEmbeddingProvider } from "./embeddings/create-provider.js";
import type { EmbeddingProvider } from "./embeddings/provider.js";
import type { AppEnv } from "./http/types.js";
import { DocumentStore } from "./ingest/document-store.js";
import { DocumentIngestor } from "./ingest/ingest-document.js";
import { AdmissionController } from "./limits/admission.js";
import { BudgetGuard } from "./limits/budget-guard.js";
import { MemoryCounterStore, RedisCounterStore } from "./limits/counter-store.js";
import { ProviderLane } from "./limits/provider-lane.js";
import { UsageReports } from "./metering/usage-report.js";
import { PlanAdmin } from "./plans/plan-admin.js";
import { createLogger, type Logger } from "./observability/logger.js";
import { SecurityEvents } from "./observability/security-events.js";
import { Retriever } from "./retrieval/retriever.js";
import { TenantAdmin } from "./tenancy/tenant-admin.js";

export interface FenceInstance {
  app: OpenAPIHono<AppEnv>;
  db: Database;
  embeddings: EmbeddingProvider;
  securityEvents: SecurityEvents;
  caches: TenantCaches;
  budgets: BudgetGuard;
  retriever: Retriever;
  logger: Logger;
  close(): Promise<void>;
}

export interface BuildOptions {
  /** Reuse an already-loaded provider (tests and benchmarks share one model across instances). */
  embeddings?: EmbeddingProvider;
  logger?: Logger;
  /** Isolation eval only: weakened locks, injected in code (see IsolationMutations). */
  mutations?: IsolationMutations;
}

/**
 * The composition root: database → migrations → model → services → app. `main.ts`, the tests,
 * the isolation eval and the benchmarks all build Fence through here, so they run the same wiring.
 */
export async function buildFence(config: FenceConfig, options: BuildOptions = {}): Promise<FenceInstance> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const db = await connectDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.databasePoolSize,
    mutations: options.mutations,
  });
  try {
    const applied = await runMigrations(db);
    if (applied > 0) logger.info({ applied }, "database migrations applied");
    const embeddings = options.embeddings ?? (await createEmbeddingProvider(config.embeddings));
    await ensureVectorIndex(db, embeddings.model, embeddings.dimensions);

    const securityEvents = new SecurityEvents(logger);
    const caches = new TenantCaches(config.cacheEntries);
    const budgets = new BudgetGuard(db, config.internalMicrosPerMTok);
    const counters = config.redisUrl ? await RedisCounterStore.connect(config.redisUrl, logger) : new MemoryCounterStore();
    const admission = new AdmissionController(counters, { maxInFlight: config.maxInFlight }, logger);
    const retriever = new Retriever(db, embeddings, caches, securityEvents, budgets, { efSearch: config.retrieval.hnswEfSearch });
    const chat = new ChatService(db, retriever, caches, securityEvents, budgets, config.llm ? new LlmClient(config.llm, new ProviderLane("llm", config.llm.lane)) : undefined, {
      k: 8,
      minRelevance: config.retrieval.minRelevance,
      maxPassages: 6,
      maxContextChars: 6000,
      provider: config.llm?.provider ?? "none",
      fallbackModel: config.llm?.fallbackModel,
      maxOutputTokens: config.llm?.maxOutputTokens ?? 0,
    });
    const app = createApp({
      db,
      logger,
      securityEvents,
      tenantAdmin: new TenantAdmin(db, caches),
      ingestor: new DocumentIngestor(db, embeddings, budgets, { maxTextChars: config.limits.maxTextChars }),
      budgets,
      planAdmin: new PlanAdmin(db),
      usageReports: new UsageReports(db),
      admission,
      documents: new DocumentStore(db),
      retriever,
      chat,
      embeddingModel: embeddings.model,
      adminKey: config.adminKey,
      limits: { maxBodyBytes: config.limits.maxBodyBytes, searchMaxK: config.limits.searchMaxK },
    });
    return {
      app,
      db,
      embeddings,
      securityEvents,
      caches,
      budgets,
      retriever,
      logger,
      async close() {
        await counters.close();
        await db.close();
        if (!options.embeddings) await embeddings.close?.();
      },
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}
