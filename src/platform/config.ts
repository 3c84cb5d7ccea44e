import { availableParallelism } from "node:os";
import { z } from "zod";

/**
 * Fence's whole configuration, parsed once from the environment. Everything else receives a
 * `FenceConfig` value; nothing reads `process.env` after start-up (so the same app can be built
 * from Workers bindings later).
 */

const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === "" ? undefined : v))
  .optional();

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const ConfigSchema = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(8787),
    HOST: z.string().default("127.0.0.1"),
    FENCE_ADMIN_KEY: optionalString.refine((v) => v === undefined || v.length >= 16, {
      message: "must be at least 16 characters (use a random secret)",
    }),
    /**
     * Signs console session cookies. Without it each process makes a random one: sessions then end
     * at a restart and are not shared by instances behind a load balancer (set one there).
     */
    FENCE_CONSOLE_SECRET: optionalString.refine((v) => v === undefined || v.length >= 32, {
      message: "must be at least 32 characters (use a random secret, e.g. openssl rand -hex 32)",
    }),
    FENCE_DATA_DIR: z.string().default("./.fence-data"),
    FENCE_PGLITE_THREAD: z
      .enum(["true", "false"])
      .default("true")
      .transform((v) => v === "true"),
    DATABASE_URL: optionalString.refine(
      (v) => v === undefined || /^postgres(ql)?:\/\//.test(v),
      { message: "must be a postgres:// or postgresql:// URL" },
    ),
    DATABASE_POOL_SIZE: positiveInt(10),
    FENCE_DISTRIBUTED: z.enum(["auto", "citus", "none"]).default("auto"),
    REDIS_URL: optionalString.refine((v) => v === undefined || /^rediss?:\/\//.test(v), {
      message: "must be a redis:// or rediss:// URL",
    }),
    FENCE_MAX_IN_FLIGHT: positiveInt(256),
    FENCE_MAX_IN_SERVICE: z.coerce.number().int().min(1).max(4096).optional(),
    FENCE_MAX_WAITING_PER_TENANT: positiveInt(32),
    FENCE_MAX_LARGE_BODIES: positiveInt(2),
    FENCE_MAX_LARGE_BODIES_PER_TENANT: positiveInt(1),
    FENCE_LARGE_BODY_PACE_MB: z.coerce.number().min(0).max(10_000).default(20),
    FENCE_JOB_WORKERS: z.coerce.number().int().min(0).max(64).default(2),
    FENCE_JOB_RESERVED_WORKERS: z.coerce.number().int().min(0).max(16).default(1),
    FENCE_JOB_LEASE_MS: positiveInt(30_000),
    FENCE_JOB_POLL_MS: positiveInt(1000),
    FENCE_JOB_RETRY_BASE_MS: positiveInt(1000),
    FENCE_ASYNC_INGEST_BYTES: positiveInt(256 * 1024),
    FENCE_BATCH_MAX_DOCUMENTS: positiveInt(100),

    FENCE_EMBEDDINGS: z.enum(["local", "transformers", "openai"]).default("local"),
    FENCE_EMBEDDING_THREADS: z.coerce.number().int().min(1).max(32).optional(),
    FENCE_EMBEDDING_RESERVED_THREADS: z.coerce.number().int().min(0).max(8).default(2),
    FENCE_MODELS_DIR: optionalString,
    FENCE_TRANSFORMERS_MODEL: z.string().default("Xenova/all-MiniLM-L6-v2"),
    FENCE_TRANSFORMERS_ALLOW_REMOTE: z
      .enum(["true", "false"])
      .default("false")
      .transform((v) => v === "true"),
    EMBEDDINGS_BASE_URL: optionalString,
    EMBEDDINGS_API_KEY: optionalString,
    EMBEDDINGS_MODEL: z.string().default("text-embedding-3-small"),
    EMBEDDINGS_DIMENSIONS: z.coerce.number().int().positive().max(16000).optional(),
    EMBEDDINGS_MAX_CONCURRENCY: positiveInt(8),
    EMBEDDINGS_MAX_REQUESTS_PER_MINUTE: z.coerce.number().int().positive().optional(),
    EMBEDDINGS_RESERVED_SLOTS: z.coerce.number().int().min(0).default(1),

    LLM_BASE_URL: optionalString,
    LLM_API_KEY: optionalString,
    LLM_MODEL: optionalString,
    LLM_TIMEOUT_MS: positiveInt(60_000),
    LLM_FALLBACK_MODEL: optionalString,
    LLM_PROVIDER: z.string().regex(/^[a-z0-9._-]{1,50}$/).default("openai-compatible"),
    LLM_MAX_OUTPUT_TOKENS: positiveInt(1024),
    LLM_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
    LLM_MAX_CONCURRENCY: positiveInt(16),
    LLM_MAX_REQUESTS_PER_MINUTE: z.coerce.number().int().positive().optional(),
    LLM_RESERVED_SLOTS: z.coerce.number().int().min(0).default(1),
    LLM_BREAKER_FAILURES: positiveInt(5),
    LLM_BREAKER_COOLDOWN_MS: positiveInt(30_000),
    LLM_QUEUE_TIMEOUT_MS: positiveInt(30_000),
    FENCE_INTERNAL_MICROS_PER_MTOK: z.coerce.number().int().min(0).default(0),

    FENCE_MAX_BODY_BYTES: positiveInt(10 * 1024 * 1024),
    FENCE_MAX_TEXT_CHARS: positiveInt(2_000_000),
    FENCE_SEARCH_MAX_K: positiveInt(50),
    FENCE_MIN_RELEVANCE: z.coerce.number().min(-1).max(1).default(0.25),
    FENCE_HNSW_EF_SEARCH: positiveInt(100),
    FENCE_CACHE_ENTRIES: positiveInt(5000),
    FENCE_RUN_RETENTION_DAYS: positiveInt(30),
    FENCE_METRICS_TOKEN: optionalString.refine((v) => v === undefined || v.length >= 16, {
      message: "must be at least 16 characters (use a random secret)",
    }),
    FENCE_METRICS_TOP_TENANTS: z.coerce.number().int().min(0).max(1000).default(20),
    OTEL_EXPORTER_OTLP_ENDPOINT: optionalString.refine((v) => v === undefined || /^https?:\/\//.test(v), {
      message: "must be an http:// or https:// URL (OTLP/HTTP)",
    }),
    OTEL_SERVICE_NAME: z.string().trim().min(1).default("fence"),
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    FENCE_TRUSTED_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(0),
    FENCE_AUTH_FAILURES_PER_ADDRESS: positiveInt(30),
    FENCE_AUTH_FAILURE_WINDOW_SEC: positiveInt(60),
  })
  .superRefine((env, ctx) => {
    if (env.FENCE_EMBEDDINGS === "openai" && !env.EMBEDDINGS_BASE_URL) {
      ctx.addIssue({
        code: "custom",
        path: ["EMBEDDINGS_BASE_URL"],
        message: "is required when FENCE_EMBEDDINGS=openai",
      });
    }
    const llmSet = [env.LLM_BASE_URL, env.LLM_MODEL].filter(Boolean).length;
    if (llmSet === 1) {
      ctx.addIssue({
        code: "custom",
        path: [env.LLM_BASE_URL ? "LLM_MODEL" : "LLM_BASE_URL"],
        message: "LLM_BASE_URL and LLM_MODEL must be set together",
      });
    }
  });

export interface FenceConfig {
  port: number;
  host: string;
  adminKey: string | undefined;
  /** Signs console sessions; undefined: a random secret per process. */
  consoleSecret: string | undefined;
  dataDir: string;
  /** The embedded database on a thread of its own (db/pglite-thread.ts; opt-in), or on the event loop; see docs/limits-and-fairness.md. */
  pgliteThread: boolean;
  databaseUrl: string | undefined;
  databasePoolSize: number;
  /** Postgres only: `auto` distributes the tables when the database is a Citus coordinator (db/citus.ts). */
  distributed: "auto" | "citus" | "none";
  /** Shared admission counters for many instances; memory when unset. */
  redisUrl: string | undefined;
  /** Requests admitted at once (in service and waiting for a seat); beyond it, 503 `overloaded`. */
  maxInFlight: number;
  /** Requests in service at once; beyond it they wait in per-tenant fair queues (flow/fair-seats.ts). */
  maxInService: number;
  /** Requests of one tenant waiting for a seat; beyond it, 429 `fair_share`. */
  maxWaitingPerTenant: number;
  /** Request bodies over 64 KiB read and handled at once; the rest wait unread, fairly (limits/admission.ts). */
  maxLargeBodies: number;
  /** Of those, one tenant's at once; its next waits its turn (limits/admission.ts). */
  maxLargeBodiesPerTenant: number;
  /** Bytes a second a large body is read at while other tenants are served; 0: full speed. */
  largeBodyPace: number;
  /** Durable ingestion: workers per instance, lease, polling and retry (jobs/job-runner.ts). */
  jobs: { workers: number; reservedWorkers: number; leaseMs: number; pollMs: number; retryBaseMs: number };
  embeddings:
    | { provider: "local"; threads: number; reservedThreads: number }
    | { provider: "transformers"; model: string; modelsDir: string | undefined; allowRemote: boolean }
    | {
        provider: "openai";
        baseUrl: string;
        apiKey: string | undefined;
        model: string;
        dimensions: number | undefined;
        maxConcurrency: number;
        maxPerMinute: number | undefined;
        reservedSlots: number;
      };
  llm:
    | {
        baseUrl: string;
        apiKey: string | undefined;
        model: string;
        fallbackModel: string | undefined;
        provider: string;
        timeoutMs: number;
        maxOutputTokens: number;
        maxRetries: number;
        /** The provider lane: concurrency, circuit breaker and queue wait (flow/provider-lane.ts). */
        lane: {
          maxConcurrent: number;
          maxPerMinute: number | undefined;
          reservedSlots: number;
          failureThreshold: number;
          cooldownMs: number;
          queueTimeoutMs: number;
        };
      }
    | undefined;
  /** Price for models without a price row (local models), in micro-units per million tokens. */
  internalMicrosPerMTok: number;
  limits: {
    maxBodyBytes: number;
    maxTextChars: number;
    searchMaxK: number;
    /** An upload larger than this is queued (202 + job) instead of ingested in the request. */
    asyncIngestBytes: number;
    batchMaxDocuments: number;
  };
  retrieval: { minRelevance: number; hnswEfSearch: number };
  cacheEntries: number;
  /** Run records older than this are deleted by the periodic sweep (runs/retention-sweep.ts). */
  runRetentionDays: number;
  /** GET /metrics: a scrape token besides the admin key, and how many tenants get a label of their own. */
  metrics: { token: string | undefined; topTenants: number };
  /** OpenTelemetry traces over OTLP/HTTP; off (no OTel code loaded) without an endpoint. */
  tracing: { endpoint: string | undefined; serviceName: string };
  logLevel: string;
  /** Proxies in front of Fence that append to X-Forwarded-For (0: the header is not trusted). */
  trustedProxyHops: number;
  /** Failed authentications one client address may make per window before it gets 429s. */
  authFailures: { perAddress: number; windowSec: number };
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function loadConfig(env: Record<string, string | undefined> = process.env): FenceConfig {
  const parsed = ConfigSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".") || "(env)"}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    host: e.HOST,
    adminKey: e.FENCE_ADMIN_KEY,
    consoleSecret: e.FENCE_CONSOLE_SECRET,
    dataDir: e.FENCE_DATA_DIR,
    pgliteThread: e.FENCE_PGLITE_THREAD,
    databaseUrl: e.DATABASE_URL,
    distributed: e.FENCE_DISTRIBUTED,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    redisUrl: e.REDIS_URL,
    maxInFlight: e.FENCE_MAX_IN_FLIGHT,
    maxInService: e.FENCE_MAX_IN_SERVICE ?? defaultSeats(),
    maxWaitingPerTenant: e.FENCE_MAX_WAITING_PER_TENANT,
    maxLargeBodies: e.FENCE_MAX_LARGE_BODIES,
    maxLargeBodiesPerTenant: e.FENCE_MAX_LARGE_BODIES_PER_TENANT,
    largeBodyPace: e.FENCE_LARGE_BODY_PACE_MB * 1_000_000,
    jobs: {
      workers: e.FENCE_JOB_WORKERS,
      reservedWorkers: e.FENCE_JOB_RESERVED_WORKERS,
      leaseMs: e.FENCE_JOB_LEASE_MS,
      pollMs: e.FENCE_JOB_POLL_MS,
      retryBaseMs: e.FENCE_JOB_RETRY_BASE_MS,
    },
    embeddings:
      e.FENCE_EMBEDDINGS === "local"
        ? {
            provider: "local",
            threads: e.FENCE_EMBEDDING_THREADS ?? Math.min(4, availableParallelism()),
            reservedThreads: e.FENCE_EMBEDDING_RESERVED_THREADS,
          }
        : e.FENCE_EMBEDDINGS === "transformers"
          ? {
              provider: "transformers",
              model: e.FENCE_TRANSFORMERS_MODEL,
              modelsDir: e.FENCE_MODELS_DIR,
              allowRemote: e.FENCE_TRANSFORMERS_ALLOW_REMOTE,
            }
          : {
              provider: "openai",
              baseUrl: e.EMBEDDINGS_BASE_URL!,
              apiKey: e.EMBEDDINGS_API_KEY,
              model: e.EMBEDDINGS_MODEL,
              dimensions: e.EMBEDDINGS_DIMENSIONS,
              maxConcurrency: e.EMBEDDINGS_MAX_CONCURRENCY,
              maxPerMinute: e.EMBEDDINGS_MAX_REQUESTS_PER_MINUTE,
              reservedSlots: e.EMBEDDINGS_RESERVED_SLOTS,
            },
    llm:
      e.LLM_BASE_URL && e.LLM_MODEL
        ? {
            baseUrl: e.LLM_BASE_URL,
            apiKey: e.LLM_API_KEY,
            model: e.LLM_MODEL,
            fallbackModel: e.LLM_FALLBACK_MODEL,
            provider: e.LLM_PROVIDER,
            timeoutMs: e.LLM_TIMEOUT_MS,
            maxOutputTokens: e.LLM_MAX_OUTPUT_TOKENS,
            maxRetries: e.LLM_MAX_RETRIES,
            lane: {
              maxConcurrent: e.LLM_MAX_CONCURRENCY,
              maxPerMinute: e.LLM_MAX_REQUESTS_PER_MINUTE,
              reservedSlots: e.LLM_RESERVED_SLOTS,
              failureThreshold: e.LLM_BREAKER_FAILURES,
              cooldownMs: e.LLM_BREAKER_COOLDOWN_MS,
              queueTimeoutMs: e.LLM_QUEUE_TIMEOUT_MS,
            },
          }
        : undefined,
    internalMicrosPerMTok: e.FENCE_INTERNAL_MICROS_PER_MTOK,
    limits: {
      maxBodyBytes: e.FENCE_MAX_BODY_BYTES,
      maxTextChars: e.FENCE_MAX_TEXT_CHARS,
      searchMaxK: e.FENCE_SEARCH_MAX_K,
      asyncIngestBytes: e.FENCE_ASYNC_INGEST_BYTES,
      batchMaxDocuments: e.FENCE_BATCH_MAX_DOCUMENTS,
    },
    retrieval: { minRelevance: e.FENCE_MIN_RELEVANCE, hnswEfSearch: e.FENCE_HNSW_EF_SEARCH },
    cacheEntries: e.FENCE_CACHE_ENTRIES,
    runRetentionDays: e.FENCE_RUN_RETENTION_DAYS,
    metrics: { token: e.FENCE_METRICS_TOKEN, topTenants: e.FENCE_METRICS_TOP_TENANTS },
    tracing: { endpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: e.OTEL_SERVICE_NAME },
    logLevel: e.LOG_LEVEL,
    trustedProxyHops: e.FENCE_TRUSTED_PROXY_HOPS,
    authFailures: { perAddress: e.FENCE_AUTH_FAILURES_PER_ADDRESS, windowSec: e.FENCE_AUTH_FAILURE_WINDOW_SEC },
  };
}

/**
 * Seats (requests in service at once) sized to the machine. The work of a request is mostly this
 * process's own CPU (the event loop, PGlite, JSON) plus the model threads and the database, so a
 * few per core keep the cores busy; more only lengthen every request's share of the loop. `npm run bench:flood`
 * measured the choice (docs/limits-and-fairness.md).
 */
function defaultSeats(): number {
  return Math.max(8, 4 * availableParallelism());
}
