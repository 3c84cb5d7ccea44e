import { bigint, date, index, integer, jsonb, pgTable, primaryKey, smallint, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { platformAll, RowLevelSecurity, tenantIsolation } from "./rls.js";
import { tenants } from "./tenancy.js";

/** Runs: the record of each chat request and ingestion, and the eval cases made from them. */

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
 * RLS (drizzle/0007): tenant-owned; grants let a tenant insert and read its runs but never change
 * or delete one (a record is evidence): only the platform deletes, in the retention sweep.
 */
export const runsRls = RowLevelSecurity.forced(runs, [tenantIsolation(), platformAll()]);

/**
 * Runs counted per UTC day, kind, status, error code and latency bucket (runs/run-daily.ts): the
 * console's overview reads a month of p50/p95 latency and refusals by reason from these few rows
 * instead of every run. Kept by RunStore.insert in the run's transaction; trimmed with the runs by
 * the retention sweep. A bucket is ⌊ln(1 + latency ms) / ln 1.1⌋: each spans 10 %, so a percentile
 * read from the buckets is within about 5 % of the exact one. No foreign key to `tenants`, for the
 * reason usage_daily has none; purging a tenant deletes its rows.
 */
export const runsDaily = pgTable(
  "runs_daily",
  {
    tenantId: uuid("tenant_id").notNull(),
    day: date("day", { mode: "string" }).notNull(),
    kind: text("kind").$type<RunKind>().notNull(),
    status: text("status").$type<RunStatus>().notNull(),
    /** '' when the run has none (a key column may not be null). */
    errorCode: text("error_code").notNull(),
    latencyBucket: smallint("latency_bucket").notNull(),
    runs: bigint("runs", { mode: "number" }).notNull(),
  },
  (t) => [primaryKey({ name: "runs_daily_pk", columns: [t.tenantId, t.day, t.kind, t.status, t.errorCode, t.latencyBucket] })],
);

/** RLS (drizzle/0018): tenant-owned, the own-rows policy in its per-row form; only the platform deletes (retention, purge). */
export const runsDailyRls = RowLevelSecurity.forced(runsDaily, [tenantIsolation("per-row"), platformAll()]);

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

/** RLS (drizzle/0007): tenant-owned. */
export const evalCasesRls = RowLevelSecurity.forced(evalCases, [tenantIsolation(), platformAll()]);

export type RunRow = typeof runs.$inferSelect;
export type EvalCaseRow = typeof evalCases.$inferSelect;
