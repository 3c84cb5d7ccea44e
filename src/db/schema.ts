import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  doublePrecision,
  customType,
  foreignKey,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

/**
 * Fence's tables. `tenant_id` is the first column of every tenant-owned key and index, so the
 * tables can be distributed by tenant (Citus) without code changes, and so the planner answers a
 * small tenant from a b-tree range instead of the shared vector index.
 *
 * Row-level security, roles and grants live in the hand-written migration `drizzle/0001_*.sql`.
 */

/** A pgvector column without a fixed dimension: each embedding model gets its own partial index. */
const vector = customType<{ data: number[]; driverData: string }>({
  dataType: () => "vector",
  toDriver: (value) => `[${value.join(",")}]`,
  fromDriver: (value) => JSON.parse(value) as number[],
});

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => "bytea",
  fromDriver: (value) => new Uint8Array(value),
});

const tsvector = customType<{ data: string }>({ dataType: () => "tsvector" });

export const tenants = pgTable("tenants", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: text("name").notNull(),
  plan: text("plan").notNull().default("free"),
  /** Bumped whenever the tenant's documents change; part of every response-cache key (I5). */
  dataVersion: bigint("data_version", { mode: "number" }).notNull().default(0),
  /**
   * The key of the HMAC that names the tenant's cache entries (I5); rotated when documents are
   * deleted, so no instance can reach what was cached before. Read with the API key.
   */
  cacheSecret: text("cache_secret")
    .notNull()
    .default(sql`replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')`),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

export const apiKeys = pgTable(
  "api_keys",
  {
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    id: uuid("id").notNull().defaultRandom(),
    name: text("name").notNull(),
    /** Shown to humans to tell keys apart; never enough to authenticate. */
    prefix: text("prefix").notNull(),
    /** SHA-256 of the whole key; the plaintext is shown once and never stored. */
    keyHash: text("key_hash").notNull(),
    project: text("project").notNull().default("default"),
    environment: text("environment").notNull().default("prod"),
    /** A limit of this key's own, below the plan's (e.g. for a key handed to a batch script). */
    requestsPerMinute: integer("requests_per_minute"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    uniqueIndex("api_keys_key_hash_idx").on(t.keyHash),
  ],
);

export const documents = pgTable(
  "documents",
  {
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    id: uuid("id").notNull().defaultRandom(),
    sourceId: text("source_id"),
    title: text("title").notNull(),
    mediaType: text("media_type").notNull(),
    contentHash: text("content_hash").notNull(),
    byteSize: integer("byte_size").notNull(),
    chunkCount: integer("chunk_count").notNull(),
    embeddingModel: text("embedding_model").notNull(),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull().default({}),
    version: integer("version").notNull().default(1),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    uniqueIndex("documents_tenant_source_idx")
      .on(t.tenantId, t.sourceId)
      .where(sql`${t.sourceId} IS NOT NULL`),
    index("documents_tenant_created_idx").on(t.tenantId, t.createdAt, t.id),
  ],
);

export const chunks = pgTable(
  "chunks",
  {
    tenantId: uuid("tenant_id").notNull(),
    id: uuid("id").notNull().defaultRandom(),
    documentId: uuid("document_id").notNull(),
    position: integer("position").notNull(),
    heading: text("heading"),
    text: text("text").notNull(),
    embeddingModel: text("embedding_model").notNull(),
    embedding: vector("embedding").notNull(),
    tsv: tsvector("tsv")
      .notNull()
      .generatedAlwaysAs(sql`to_tsvector('english', coalesce(heading, '') || ' ' || text)`),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    // The composite key makes a chunk belong to a document *of the same tenant*: a chunk can
    // never point at another tenant's document, whatever the application does.
    foreignKey({
      columns: [t.tenantId, t.documentId],
      foreignColumns: [documents.tenantId, documents.id],
    }).onDelete("cascade"),
    index("chunks_tenant_document_idx").on(t.tenantId, t.documentId, t.position),
    index("chunks_tenant_model_idx").on(t.tenantId, t.embeddingModel),
    index("chunks_tsv_idx").using("gin", t.tsv),
  ],
);

export type TenantRow = typeof tenants.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
export type DocumentRow = typeof documents.$inferSelect;
export type ChunkRow = typeof chunks.$inferSelect;

/**
 * Plans are data (seeded free / pro / enterprise, editable by the admin API): the budgets and
 * models both cost control and flow control read. Not tenant-owned; tenants may read them.
 */
export const plans = pgTable("plans", {
  name: text("name").primaryKey(),
  tokensPerDay: bigint("tokens_per_day", { mode: "number" }),
  tokensPerMonth: bigint("tokens_per_month", { mode: "number" }),
  /** Monthly spend cap in micro-units of the billing currency (1 USD = 1,000,000). */
  spendPerMonthMicros: bigint("spend_per_month_micros", { mode: "number" }),
  preferredModel: text("preferred_model"),
  fallbackModel: text("fallback_model"),
  downgradeAllowed: boolean("downgrade_allowed").notNull().default(true),
  /** Share of any budget (0–1) at which requests move to the fallback model. */
  downgradeThreshold: doublePrecision("downgrade_threshold").notNull().default(0.9),
  requestsPerMinute: integer("requests_per_minute"),
  tokensPerMinute: integer("tokens_per_minute"),
  maxConcurrency: integer("max_concurrency"),
  schedulingWeight: integer("scheduling_weight").notNull().default(1),
  /** Ingestion jobs of one tenant that run at once, over all instances. */
  maxRunningJobs: integer("max_running_jobs").notNull().default(1),
  /**
   * Jobs of one tenant not yet finished (queued or running), and the bytes of their kept uploads:
   * an upload past either is refused with 429 `queue_full`, so no tenant fills the shared queue
   * and its database. Null: unlimited.
   */
  maxQueuedJobs: integer("max_queued_jobs").default(1000),
  maxQueuedBytes: bigint("max_queued_bytes", { mode: "number" }).default(1024 * 1024 * 1024),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

/** Per-tenant overrides on top of the plan (persona, answer style, flags, retrieval k, …). */
export const tenantConfigs = pgTable("tenant_configs", {
  tenantId: uuid("tenant_id")
    .primaryKey()
    .references(() => tenants.id, { onDelete: "cascade" }),
  overrides: jsonb("overrides").$type<Record<string, unknown>>().notNull().default({}),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

/** Versioned prices per provider and model, in micro-units per million tokens. */
export const prices = pgTable(
  "prices",
  {
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    version: integer("version").notNull(),
    inputMicrosPerMTok: bigint("input_micros_per_mtok", { mode: "number" }).notNull(),
    outputMicrosPerMTok: bigint("output_micros_per_mtok", { mode: "number" }).notNull(),
    cachedMicrosPerMTok: bigint("cached_micros_per_mtok", { mode: "number" }).notNull().default(0),
    effectiveFrom: timestamp("effective_from", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.provider, t.model, t.version] })],
);

/**
 * The usage ledger. One row per billable event, idempotent by `event_id` within a tenant: a
 * replayed event increments `duplicate_count` instead of counting again. Failed provider calls
 * are kept (status `failed`, no cost) as the technical record; a retry points at its original.
 */
export const usageEvents = pgTable(
  "usage_events",
  {
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    id: uuid("id").notNull().defaultRandom(),
    eventId: text("event_id").notNull(),
    project: text("project").notNull(),
    environment: text("environment").notNull(),
    keyId: uuid("key_id"),
    requestId: text("request_id").notNull(),
    feature: text("feature").notNull(),
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    inputTokens: bigint("input_tokens", { mode: "number" }).notNull().default(0),
    outputTokens: bigint("output_tokens", { mode: "number" }).notNull().default(0),
    cachedTokens: bigint("cached_tokens", { mode: "number" }).notNull().default(0),
    costMicros: bigint("cost_micros", { mode: "number" }).notNull().default(0),
    priceVersion: integer("price_version"),
    status: text("status").notNull(),
    usageEstimated: boolean("usage_estimated").notNull().default(false),
    retryOf: text("retry_of"),
    duplicateCount: integer("duplicate_count").notNull().default(0),
    error: text("error"),
    occurredAt: timestamp("occurred_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    uniqueIndex("usage_events_tenant_event_idx").on(t.tenantId, t.eventId),
    index("usage_events_tenant_time_idx").on(t.tenantId, t.occurredAt),
  ],
);

/** Running totals per tenant and period (`day:2026-11-23`, `month:2026-11`), kept with the ledger. */
export const usageCounters = pgTable(
  "usage_counters",
  {
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    period: text("period").notNull(),
    tokens: bigint("tokens", { mode: "number" }).notNull().default(0),
    costMicros: bigint("cost_micros", { mode: "number" }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.period] })],
);

/** Budget held by requests in flight; expires so a crashed instance cannot hold budget forever. */
export const budgetReservations = pgTable(
  "budget_reservations",
  {
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    id: uuid("id").notNull().defaultRandom(),
    requestId: text("request_id").notNull(),
    tokens: bigint("tokens", { mode: "number" }).notNull(),
    costMicros: bigint("cost_micros", { mode: "number" }).notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] })],
);

export type PlanRow = typeof plans.$inferSelect;
export type UsageEventRow = typeof usageEvents.$inferSelect;

/** One step of a job as recorded for `GET /v1/jobs/:id`: what ran, how long, how it ended. */
export interface JobStep {
  name: string;
  status: "succeeded" | "failed";
  attempt: number;
  started_at: string;
  duration_ms: number;
  detail?: Record<string, unknown>;
  error?: string;
}

/**
 * Durable work (today: document ingestion), queued in the database Fence already has. Workers on
 * any instance claim jobs under a lease; a job whose worker died is claimed again when its lease
 * expires. `serial_key` serialises jobs on one artifact (a `source_id`): the partial unique index
 * makes two running jobs for it impossible on any instance. The upload itself is kept in
 * `payload` until the job ends, so a restarted worker starts again from the original bytes.
 */
export const jobs = pgTable(
  "jobs",
  {
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    id: uuid("id").notNull().defaultRandom(),
    batchId: uuid("batch_id"),
    /** Position in its batch, so a batch is always listed (and replayed) in the order it was sent. */
    batchIndex: integer("batch_index").notNull().default(0),
    /** Hash of the whole batch request, so a reused Idempotency-Key with another body is refused. */
    requestHash: text("request_hash"),
    kind: text("kind").notNull(),
    /**
     * What a worker must offer to run the job — for ingestion, the embedding model the document
     * is to be embedded with — so that during a rolling model change (or in tests sharing one
     * database) an instance never embeds a job with a different model than it was queued for.
     * Empty: any worker.
     */
    requires: text("requires").notNull().default(""),
    /** 0 = interactive (a person waits), 1 = bulk (batches): interactive is claimed first. */
    priority: integer("priority").notNull(),
    status: text("status").notNull().default("queued"),
    serialKey: text("serial_key"),
    /** What the worker needs besides the bytes (title, media type, source id, metadata …). */
    input: jsonb("input").$type<Record<string, unknown>>().notNull(),
    payload: bytea("payload"),
    /** Who submitted it, so the worker acts with the same identity (key, project, environment). */
    keyId: uuid("key_id").notNull(),
    project: text("project").notNull(),
    environment: text("environment").notNull(),
    attempts: integer("attempts").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull().default(5),
    runAfter: timestamp("run_after", { withTimezone: true }).notNull().defaultNow(),
    lockedBy: text("locked_by"),
    lockedUntil: timestamp("locked_until", { withTimezone: true }),
    steps: jsonb("steps").$type<JobStep[]>().notNull().default([]),
    result: jsonb("result").$type<Record<string, unknown>>(),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp("started_at", { withTimezone: true }),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    index("jobs_tenant_runnable_idx").on(t.tenantId, t.status, t.priority, t.createdAt),
    index("jobs_tenant_batch_idx").on(t.tenantId, t.batchId),
    index("jobs_running_lease_idx").on(t.lockedUntil).where(sql`${t.status} = 'running'`),
    uniqueIndex("jobs_one_running_per_serial_key_idx")
      .on(t.tenantId, t.serialKey)
      .where(sql`${t.status} = 'running' AND ${t.serialKey} IS NOT NULL`),
  ],
);

/**
 * The fair scheduler's memory of each tenant: its virtual start tag (`pass`). A tenant that has
 * been served advances by 1/weight per job; an idle tenant re-enters at the current virtual time,
 * so idling earns no burst credit. Written only by the scheduler (platform role).
 */
export const jobTenants = pgTable("job_tenants", {
  tenantId: uuid("tenant_id")
    .primaryKey()
    .references(() => tenants.id, { onDelete: "cascade" }),
  pass: doublePrecision("pass").notNull().default(0),
});

/** One row: the scheduler's virtual time (the start tag of the job claimed last). */
export const jobClock = pgTable("job_clock", {
  id: integer("id").primaryKey().default(1),
  virtualTime: doublePrecision("virtual_time").notNull().default(0),
});

export type JobRow = typeof jobs.$inferSelect;

/**
 * One step of a recorded run: what ran, when, how long, how it ended, and ids and numbers about
 * it (chunk ids and scores, tokens, the model) — never document text.
 */
export interface RunStep {
  name: string;
  status: "succeeded" | "failed";
  started_at: string;
  duration_ms: number;
  /** Ingestion jobs: the attempt the step belongs to. */
  attempt?: number;
  detail?: Record<string, unknown>;
  error?: string;
}

export type RunKind = "chat" | "ingest";
export type RunStatus = "succeeded" | "refused" | "failed";

/**
 * Run records: one row per chat request and per ingestion (a synchronous upload, or one attempt
 * of a queued job), with its steps, so "why was my answer wrong on Tuesday" is answered from what
 * happened. Tenant-owned and under RLS like every tenant table; the question and the answer are
 * the tenant's own data, stored PII-masked. Deleted after FENCE_RUN_RETENTION_DAYS.
 *
 * `request_id` is not unique: a job's attempts share `job:<id>`, and a client may reuse its own
 * x-request-id. Steps are a jsonb array on the row rather than a child table: they are written
 * once with the run and always read with it, so one row keeps the write to one INSERT and the
 * retention sweep to one DELETE.
 */
export const runs = pgTable(
  "runs",
  {
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    id: uuid("id").notNull().defaultRandom(),
    requestId: text("request_id").notNull(),
    kind: text("kind").$type<RunKind>().notNull(),
    status: text("status").$type<RunStatus>().notNull(),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    keyId: uuid("key_id"),
    project: text("project").notNull(),
    environment: text("environment").notNull(),
    promptVersion: text("prompt_version"),
    provider: text("provider"),
    model: text("model"),
    /** Chat: the last user turn and the answer, PII-masked. */
    question: text("question"),
    answer: text("answer"),
    steps: jsonb("steps").$type<RunStep[]>().notNull().default([]),
    startedAt: timestamp("started_at", { withTimezone: true }).notNull(),
    finishedAt: timestamp("finished_at", { withTimezone: true }).notNull(),
    latencyMs: integer("latency_ms").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    index("runs_tenant_started_idx").on(t.tenantId, t.startedAt, t.id),
    index("runs_tenant_request_idx").on(t.tenantId, t.requestId),
    index("runs_tenant_prompt_version_idx").on(t.tenantId, t.promptVersion, t.startedAt),
  ],
);

/**
 * A tenant's fixed quality cases, usually made from a reported bad answer (`POST /v1/evals/cases`
 * from a run): the question, the documents the answer must cite, and phrases it must or must not
 * contain. The source run is referenced, not owned: a case outlives the run's retention.
 */
export const evalCases = pgTable(
  "eval_cases",
  {
    tenantId: uuid("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    id: uuid("id").notNull().defaultRandom(),
    question: text("question").notNull(),
    expectedDocumentIds: jsonb("expected_document_ids").$type<string[]>().notNull().default([]),
    mustContain: jsonb("must_contain").$type<string[]>().notNull().default([]),
    mustNotContain: jsonb("must_not_contain").$type<string[]>().notNull().default([]),
    sourceRunId: uuid("source_run_id"),
    sourceRequestId: text("source_request_id"),
    /** The answer as it was reported (PII-masked), and the prompt version that gave it. */
    reportedAnswer: text("reported_answer"),
    promptVersion: text("prompt_version"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.id] }), index("eval_cases_tenant_created_idx").on(t.tenantId, t.createdAt, t.id)],
);

export type RunRow = typeof runs.$inferSelect;
export type EvalCaseRow = typeof evalCases.$inferSelect;
