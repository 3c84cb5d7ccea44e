import { sql } from "drizzle-orm";
import { customType, doublePrecision, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { platformAll, RowLevelSecurity, tenantIsolation } from "./rls.js";
import { tenants } from "./tenancy.js";

/** Jobs: the durable job queue and the fair scheduler's state. */

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => "bytea",
  fromDriver: (value) => new Uint8Array(value),
});

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
 * makes two running jobs for it impossible on any instance. The upload itself is kept until the
 * job ends, so a restarted worker starts again from the original bytes: in `payload` on Postgres
 * (every instance reads it), beside the embedded database's folder on PGlite (db/payload-files.ts;
 * `payload` stays NULL there). `payload_bytes` is its size wherever it is kept, NULL once dropped.
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
    payloadBytes: integer("payload_bytes"),
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
    /** GET /v1/jobs and the console's queue list: newest first, a batch in its order (job-queue.ts). */
    index("jobs_tenant_listing_idx").on(t.tenantId, t.createdAt.desc(), t.batchIndex, t.id.desc()),
    index("jobs_running_lease_idx").on(t.lockedUntil).where(sql`${t.status} = 'running'`),
    uniqueIndex("jobs_one_running_per_serial_key_idx")
      .on(t.tenantId, t.serialKey)
      .where(sql`${t.status} = 'running' AND ${t.serialKey} IS NOT NULL`),
  ],
);

/**
 * RLS (drizzle/0005): tenant-owned; a request enqueues and reads its own jobs, a worker acting
 * for the job's tenant records steps, and the scheduler claims through the platform policy.
 */
export const jobsRls = RowLevelSecurity.forced(jobs, [tenantIsolation(), platformAll()]);

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

/** RLS (drizzle/0005): the scheduler's state; no policy for fence_app, so tenants never see it. */
export const jobTenantsRls = RowLevelSecurity.forced(jobTenants, [platformAll()]);

/** One row: the scheduler's virtual time (the start tag of the job claimed last). */
export const jobClock = pgTable("job_clock", {
  id: integer("id").primaryKey().default(1),
  virtualTime: doublePrecision("virtual_time").notNull().default(0),
});

/** No RLS: not tenant-owned; only fence_platform is granted it (drizzle/0005). */
export const jobClockRls = RowLevelSecurity.off(jobClock);

export type JobRow = typeof jobs.$inferSelect;
