import { createHash } from "node:crypto";
import { and, desc, eq, getTableColumns, sql, type SQL } from "drizzle-orm";
import type { Database, TenantScope } from "../db/database.js";
import { jobs, jobTenants, type JobRow } from "../db/schema.js";
import { refuseIfTenantGone } from "../db/tenant-row-gone.js";
import { IdempotencyConflictError, JobNotCancellableError, NotFoundError, ValidationError } from "../core/errors.js";
import { isUuid, type TenantContext } from "../core/tenant-context.js";
import { DROPPED_PAYLOAD, releasePayloads, stagePayloads } from "./job-payloads.js";
import { lockTenantQueue, refuseOverQueueCaps } from "./queue-caps.js";

export type JobPriority = "interactive" | "bulk";
export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** Priorities as stored: the scheduler claims the smaller number first. */
export const PRIORITY_RANK: Record<JobPriority, number> = { interactive: 0, bulk: 1 };

export interface NewJob {
  kind: string;
  priority: JobPriority;
  /** Jobs with the same key (e.g. `source:<source_id>`) never run at once. */
  serialKey?: string | undefined;
  /** A capability the worker must have (see jobs.requires), e.g. the embedding model. */
  requires?: string | undefined;
  input: Record<string, unknown>;
  payload?: Uint8Array | undefined;
}

/** A job as its tenant sees it: everything but the payload bytes. */
export type JobView = Omit<JobRow, "payload">;

const { payload: _payload, ...viewColumns } = getTableColumns(jobs);

/**
 * The tenant's side of the durable queue: enqueue, read, list and cancel, always inside the
 * tenant's own transaction (RLS on `jobs`), so another tenant's job answers exactly like a
 * missing one (I6).
 */
export class JobQueue {
  constructor(
    private readonly db: Database,
    /** Tells this instance's workers there is work of this tenant (other instances find it by polling). */
    private readonly onEnqueued: (tenantId: string) => void = () => undefined,
  ) {}

  /**
   * Stores all jobs of a batch in one transaction: accepted whole or not at all. A batch id that
   * already exists (a resent request with the same Idempotency-Key) returns the jobs it made the
   * first time instead of queueing them again — if it is the same request; the same key with
   * another body is refused with 409. A new batch is admitted by the caller's own check (`admit`,
   * e.g. the feature flags of its uploads), then the tenant's queue caps and budget (queue-caps.ts):
   * refused, it stores nothing.
   */
  async enqueue(
    ctx: TenantContext,
    newJobs: readonly NewJob[],
    batchId: string,
    admit?: (scope: TenantScope) => Promise<void>,
  ): Promise<{ jobs: JobView[]; replayed: boolean }> {
    const requestHash = hashBatch(newJobs);
    // The scheduler learns of the tenant first; registering is idempotent, so a crash between the
    // two transactions leaves at most a tenant with no jobs, never jobs no scheduler will see.
    await this.db
      .asPlatformAdmin("job-scheduler-register-tenant", (tx) => tx.insert(jobTenants).values({ tenantId: ctx.tenantId }).onConflictDoNothing())
      .catch(refuseIfTenantGone);
    const staged = await stagePayloads(this.db, ctx.tenantId, newJobs.map((job) => job.payload));
    const result = await this.db.withTenant(ctx, async (scope) => {
      await scope.tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`fence:batch:${ctx.tenantId}:${batchId}`}, 0))`);
      const existing = await scope.tx
        .select(viewColumns)
        .from(jobs)
        .where(and(scope.owns(jobs.tenantId), eq(jobs.batchId, batchId)))
        .orderBy(jobs.batchIndex);
      if (existing.length > 0) {
        if (existing[0]!.requestHash !== requestHash) throw new IdempotencyConflictError("different_request");
        return { jobs: existing, replayed: true };
      }
      await admit?.(scope);
      // Taken after the batch lock, always in this order, so two enqueues cannot deadlock.
      await lockTenantQueue(scope);
      await refuseOverQueueCaps(scope, { jobs: newJobs.length, bytes: newJobs.reduce((sum, job) => sum + (job.payload?.length ?? 0), 0) });
      const inserted = await scope.tx
        .insert(jobs)
        .values(
          newJobs.map((job, batchIndex) => ({
            tenantId: scope.tenantId,
            id: staged.ids[batchIndex]!,
            batchId,
            batchIndex,
            requestHash,
            kind: job.kind,
            priority: PRIORITY_RANK[job.priority],
            serialKey: job.serialKey ?? null,
            requires: job.requires ?? "",
            input: job.input,
            ...staged.columns(batchIndex),
            keyId: ctx.keyId,
            project: ctx.project,
            environment: ctx.environment,
          })),
        )
        .returning(viewColumns);
      return { jobs: inserted, replayed: false };
    }).catch(async (error: unknown) => {
      await staged.settle(false);
      throw error;
    });
    await staged.settle(!result.replayed);
    if (!result.replayed) this.onEnqueued(ctx.tenantId);
    return result;
  }

  async get(ctx: TenantContext, id: string): Promise<JobView> {
    const row = isUuid(id) ? await this.db.withTenant(ctx, (scope) => findJob(scope, id)) : undefined;
    if (!row) throw new NotFoundError("Job");
    return row;
  }

  /** Newest first; `cursor` is the last job id of the previous page. */
  async list(
    ctx: TenantContext,
    filter: { batchId?: string | undefined; status?: JobStatus | undefined; limit: number; cursor?: string | undefined },
  ): Promise<{ jobs: JobView[]; nextCursor: string | null }> {
    return this.db.withTenant(ctx, async (scope) => {
      const conditions: SQL[] = [scope.owns(jobs.tenantId)];
      if (filter.batchId) {
        if (!isUuid(filter.batchId)) return { jobs: [], nextCursor: null };
        conditions.push(eq(jobs.batchId, filter.batchId));
      }
      if (filter.status) conditions.push(eq(jobs.status, filter.status));
      if (filter.cursor) {
        const after = isUuid(filter.cursor) ? await findJob(scope, filter.cursor) : undefined;
        // Another tenant's job id answers exactly like a made-up one (I6).
        if (!after) throw new ValidationError("Invalid pagination cursor.");
        conditions.push(
          // Compared in the database: created_at has microseconds, a JavaScript Date only milliseconds.
          sql`(${jobs.createdAt}, ${after.batchIndex} - ${jobs.batchIndex}, ${jobs.id}) <
              ((SELECT c.created_at FROM jobs c WHERE c.tenant_id = ${scope.tenantId} AND c.id = ${after.id}), 0, ${after.id}::uuid)`,
        );
      }
      const rows = await scope.tx
        .select(viewColumns)
        .from(jobs)
        .where(and(...conditions))
        // Jobs of one batch share created_at: within it, the order the batch was sent in.
        .orderBy(desc(jobs.createdAt), jobs.batchIndex, desc(jobs.id))
        .limit(filter.limit + 1);
      const page = rows.slice(0, filter.limit);
      return { jobs: page, nextCursor: rows.length > filter.limit ? page.at(-1)!.id : null };
    });
  }

  /** Cancels a queued job (its upload is dropped). A running or ended job answers 409. */
  async cancel(ctx: TenantContext, id: string): Promise<JobView> {
    if (!isUuid(id)) throw new NotFoundError("Job");
    const cancelledJob = await this.db.withTenant(ctx, async (scope) => {
      const [row] = await scope.tx
        .select(viewColumns)
        .from(jobs)
        .where(and(scope.owns(jobs.tenantId), eq(jobs.id, id)))
        .for("update");
      if (!row) throw new NotFoundError("Job");
      if (row.status !== "queued") throw new JobNotCancellableError(row.status);
      const [cancelled] = await scope.tx
        .update(jobs)
        .set({ status: "cancelled", ...DROPPED_PAYLOAD, finishedAt: sql`now()` })
        .where(and(scope.owns(jobs.tenantId), eq(jobs.id, id)))
        .returning(viewColumns);
      return cancelled!;
    });
    await releasePayloads(this.db, [{ tenantId: ctx.tenantId, jobId: id }]);
    return cancelledJob;
  }
}

async function findJob(scope: TenantScope, id: string): Promise<JobView | undefined> {
  const [row] = await scope.tx
    .select(viewColumns)
    .from(jobs)
    .where(and(scope.owns(jobs.tenantId), eq(jobs.id, id)));
  return row;
}

/** Identifies a batch request by everything that would make its jobs differ. */
function hashBatch(newJobs: readonly NewJob[]): string {
  const hash = createHash("sha256");
  for (const job of newJobs) {
    hash.update(JSON.stringify([job.kind, job.priority, job.serialKey ?? null, job.requires ?? "", job.input]));
    hash.update(job.payload ?? new Uint8Array());
    hash.update("\u0000");
  }
  return hash.digest("hex");
}
