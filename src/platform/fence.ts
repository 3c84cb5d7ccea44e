import type { Redis } from "ioredis";
import { RedisCacheBackend } from "../cache/redis-cache-backend.js";
import type { FenceConfig } from "./config.js";
import type { ChangeFeed } from "../db/change-feed.js";
import { connectDatabase } from "../db/connect.js";
import type { IsolationMutations } from "../db/database.js";
import { runMigrations } from "../db/migrate.js";
import { ensureVectorIndex } from "../db/vector-index.js";
import { composeFence, type ComposedFence } from "./compose-fence.js";
import { ParseThreadPool } from "../ingest/parse-thread-pool.js";
import { createEmbeddingProvider } from "./create-embedding-provider.js";
import type { EmbeddingProvider } from "../embeddings/provider.js";
import type { QueueDiscipline } from "../flow/fair-queue.js";
import { MemoryCounterStore, RedisCounterStore } from "../limits/counter-store.js";
import { createLogger, type Logger } from "../observability/logger.js";
import { FenceMetrics } from "../observability/metrics.js";
import { startTracing } from "../observability/tracing.js";
import { KEY_CHANGES_CHANNEL } from "../db/key-changes.js";
import { sweepPayloadFiles } from "../jobs/job-payloads.js";
import { connectRedis } from "./redis.js";

/**
 * A running Node instance: the composed services and app (what main.ts serves, and what the tests,
 * the evals and the benchmarks reach into), its job workers and retention sweep started, and how to
 * stop all of it.
 */
export interface FenceInstance extends ComposedFence {
  close(): Promise<void>;
}

export interface BuildOptions {
  /** Reuse an already-loaded provider (tests and benchmarks share one model across instances). */
  embeddings?: EmbeddingProvider;
  logger?: Logger;
  /** Isolation eval only: weakened locks, injected in code (see IsolationMutations). */
  mutations?: IsolationMutations;
  /**
   * How queued work is ordered in the job scheduler and the provider lanes. `fifo` exists only
   * as the noisy-neighbour benchmark's baseline; it is not configurable from the environment.
   */
  scheduling?: QueueDiscipline;
  /** Benchmarks only: `false` stores no run records (the overhead baseline); reads still work. */
  recordRuns?: boolean;
}

/**
 * The Node entry's half of the composition: what only Node has — database (PGlite or a pg pool) →
 * migrations → local model → Redis, prom-client, OTel, parse threads — handed to composeFence (the
 * one composition root, shared with the Worker), then the job loops started.
 * `main.ts`, the tests, the isolation eval and the benchmarks all build Fence through here.
 */
export async function buildFence(config: FenceConfig, options: BuildOptions = {}): Promise<FenceInstance> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const db = await connectDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    pgliteThread: config.pgliteThread,
    poolSize: config.databasePoolSize,
    distribution: config.distributed,
    mutations: options.mutations,
    discipline: options.scheduling,
  });
  let redis: Redis | undefined;
  let parser: ParseThreadPool | undefined;
  let keyChanges: ChangeFeed | undefined;
  try {
    // Connected first, so that a wrong REDIS_URL stops start-up before the model is loaded.
    redis = config.redisUrl ? await connectRedis(config.redisUrl, logger) : undefined;
    const applied = await runMigrations(db);
    if (applied > 0) logger.info({ applied }, "database migrations applied");
    // Uploads of jobs that ended (or never committed) while the process was stopping or crashed.
    const sweptPayloads = await sweepPayloadFiles(db);
    if (sweptPayloads > 0) logger.info({ removed: sweptPayloads }, "orphaned job payload files removed");
    const embeddings = options.embeddings ?? (await createEmbeddingProvider(config.embeddings, options.scheduling));
    await ensureVectorIndex(db, embeddings.model, embeddings.dimensions);

    // After the migrations: the triggers that announce key changes exist from here on.
    let feedWarnedAt = 0;
    keyChanges = await db.openChangeFeed(KEY_CHANGES_CHANNEL, (error) => {
      if (Date.now() - feedWarnedAt < 60_000) return; // it retries every second while the database is away
      feedWarnedAt = Date.now();
      logger.warn({ err: error }, "key change feed lost its connection; verified keys are checked against the database until it is back");
    });
    const metrics = new FenceMetrics({ topTenants: config.metrics.topTenants, logger });
    const tracing = config.tracing.endpoint ? await startTracing({ endpoint: config.tracing.endpoint, serviceName: config.tracing.serviceName }) : undefined;
    let cacheWarnedAt = 0;
    const counters = redis ? new RedisCounterStore(redis) : new MemoryCounterStore();
    // Uploads are parsed in worker threads with time and memory limits, never on the event loop.
    parser = new ParseThreadPool({ maxTextChars: config.limits.maxTextChars });
    const composed = composeFence({
      parser,
      config,
      db,
      embeddings,
      logger,
      counters,
      sharedCache: redis
        ? {
            backend: new RedisCacheBackend(redis),
            onError: (error) => {
              if (Date.now() - cacheWarnedAt < 60_000) return; // once a minute is enough while Redis is down
              cacheWarnedAt = Date.now();
              logger.warn({ err: error }, "shared cache unavailable; treated as a miss");
            },
          }
        : undefined,
      metrics,
      tracing,
      scheduling: options.scheduling,
      recordRuns: options.recordRuns,
      keyChanges,
    });
    const { jobRunner: runner, runs, runRetention, keyUse } = composed;
    runner.start();
    runRetention.start();
    return {
      ...composed,
      async close() {
        await runner.stop();
        await runs.settled(); // run records still being written after their responses
        await keyUse.flush();
        await tracing?.shutdown();
        await runRetention.stop();
        await counters.close();
        await redis?.quit().catch(() => undefined);
        await keyChanges?.close();
        await db.close();
        if (!options.embeddings) await embeddings.close?.();
        await parser?.close();
      },
    };
  } catch (error) {
    redis?.disconnect();
    await parser?.close();
    await keyChanges?.close();
    await db.close();
    throw error;
  }
}
