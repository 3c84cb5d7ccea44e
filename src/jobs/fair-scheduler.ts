import { sql, type SQL } from "drizzle-orm";
import { queryRows, type Database, type Tx } from "../db/database.js";
import type { PayloadKey } from "../db/payload-files.js";
import type { QueueDiscipline } from "../flow/fair-queue.js";
import { releasePayloads } from "./job-payloads.js";

/** What a worker gets when it claims a job (the payload is loaded by the handler, if needed). */
export interface ClaimedJob {
  id: string;
  tenantId: string;
  kind: string;
  priority: number;
  input: Record<string, unknown>;
  attempts: number;
  maxAttempts: number;
  keyId: string;
  project: string;
  environment: string;
  /** How long it waited since it became due (queued, or its retry time), for the metrics. */
  waitedMs: number;
}

/** Jobs with a lapsed lease taken back per claim; any left over are taken by the next claims. */
const EXPIRED_PER_CLAIM = 16;

/** Tenants considered per claim, best first; more only matters when many are locked or full. */
const CANDIDATES = 16;
/**
 * On a reserved worker, a tenant with more jobs than this queued is bulk work, whether or not one
 * of its jobs is running at the moment. Without this bound the reserved worker took a flood's job
 * whenever it looked in the instant between two of the flood's jobs (measured: an upload then
 * waited 0.8 s for it); a few documents at once are still served at once.
 */
const RESERVED_MAX_QUEUED = 4;

/**
 * Fence's job scheduler, over the `jobs` table, for every instance at once. A claim picks:
 *
 * 1. among tenants that are not suspended, with a runnable job (queued, due, and not serialised
 *    behind a running job on the same artifact) and fewer running jobs than their plan's
 *    `max_running_jobs`,
 * 2. those with interactive work first, then the smallest virtual start tag — start-time fair
 *    queuing: a tenant's tag advances by 1/weight per claimed job (weight = plan
 *    `scheduling_weight`), and a tenant that comes back from idle starts at the current virtual
 *    time, so a tenant with one job is served within a few slots of a tenant with a thousand,
 * 3. that tenant's oldest job of its best priority.
 *
 * Concurrency: the tenant's scheduler row is locked `FOR UPDATE SKIP LOCKED`, so claimers on other
 * instances move on to other tenants instead of waiting, and a tenant's running count cannot be
 * overshot; the job row is locked the same way. A partial unique index (one running job per
 * `serial_key`) makes two jobs on one document at once impossible whatever happens here.
 *
 * Reserved claims (`onlyIdleTenants`): a worker kept for tenants with no job running anywhere and
 * only a few queued (RESERVED_MAX_QUEUED). A flooding tenant has a backlog, so it never gets this
 * worker, and a tenant that uploads one document does not wait for one of the flood's jobs to
 * finish. It is extra capacity, not capacity taken from the flood: the flood keeps every regular
 * worker.
 *
 * Suspended tenants (tenants.suspended_at, TenantAdmin.suspendTenant): none of their jobs is
 * claimed, in any discipline, since a job would spend tokens the platform has stopped. Their jobs
 * stay queued (and count against their queue caps and in the queue depth as before), and are
 * claimed in their turn once the tenant is resumed. The check is read with the claim, without a
 * lock: a suspension committed while a claim runs may let that one job start, as a request already
 * in flight finishes.
 *
 * Leases: a claimed job is `running` until `locked_until`; workers extend it while they work. A job
 * whose lease has expired (its process died) is queued again — or failed, after its last attempt —
 * and the budget its lost attempt held is released.
 */
export class FairScheduler {
  constructor(
    private readonly db: Database,
    private readonly options: {
      leaseMs: number;
      discipline?: QueueDiscipline;
      /**
       * What this instance's workers can do (jobs.requires): a job needing anything else is left
       * for other instances. Unset: any job (a scheduler used on its own, e.g. by tools and tests).
       */
      capabilities?: readonly string[];
    },
  ) {}

  /**
   * Queued, due, runnable here, and not waiting for a running job on the same artifact. `tenant` is
   * the tenant the check's subquery looks in: the row's own, or the one tenant being claimed for,
   * given as a value (on Citus a locking read must name its shard's tenant in every part of it).
   */
  private runnable(alias: SQL, tenant: SQL = sql`${alias}.tenant_id`) {
    const offered = this.options.capabilities;
    const capable = offered
      ? sql`AND ${alias}.requires IN (${sql.join(["", ...offered].map((c) => sql`${c}`), sql`, `)})`
      : sql``;
    return sql`${alias}.status = 'queued' AND ${alias}.run_after <= now() ${capable}
      AND (${alias}.serial_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM jobs r WHERE r.tenant_id = ${tenant} AND r.serial_key = ${alias}.serial_key AND r.status = 'running'))`;
  }

  /**
   * Claims the next job by the rules above. `tenantId` narrows the claim to one tenant's jobs (a
   * Workers invocation after that tenant's 202); its fair order among them is unchanged.
   */
  async claim(workerId: string, options: { onlyIdleTenants?: boolean; tenantId?: string | undefined } = {}): Promise<ClaimedJob | undefined> {
    const onlyTenant = options.tenantId === undefined ? sql`` : sql`AND j.tenant_id = ${options.tenantId}`;
    let failedForGood: PayloadKey[] = [];
    const claimed = await this.db.asPlatformAdmin("job-scheduler-claim", async (tx) => {
      failedForGood = await this.requeueExpired(tx);
      if (this.options.discipline === "fifo") return options.onlyIdleTenants ? undefined : this.claimOldest(tx, workerId, onlyTenant);
      // A tenant may run up to its plan's cap; on a reserved worker, only if it runs nothing yet.
      const cap = options.onlyIdleTenants ? sql`least(p.max_running_jobs, 1)` : sql`p.max_running_jobs`;
      const candidates = await queryRows<{ tenant_id: string; start: number; weight: number; max_running: number }>(
        tx,
        sql`SELECT s.tenant_id, greatest(s.pass, c.virtual_time) AS start, p.scheduling_weight AS weight,
                   ${cap} AS max_running
            FROM job_tenants s
            JOIN tenants t ON t.id = s.tenant_id
            JOIN plans p ON p.name = t.plan
            CROSS JOIN job_clock c
            CROSS JOIN LATERAL (
              SELECT j.priority FROM jobs j
              WHERE j.tenant_id = s.tenant_id AND ${this.runnable(sql`j`)}
              ORDER BY j.priority LIMIT 1
            ) best
            WHERE c.id = 1 AND t.suspended_at IS NULL ${options.tenantId === undefined ? sql`` : sql`AND s.tenant_id = ${options.tenantId}`}
              AND (SELECT count(*) FROM jobs r WHERE r.tenant_id = s.tenant_id AND r.status = 'running') < ${cap}
              ${options.onlyIdleTenants ? sql`AND (SELECT count(*) FROM (SELECT 1 FROM jobs q WHERE q.tenant_id = s.tenant_id AND q.status = 'queued' LIMIT ${RESERVED_MAX_QUEUED + 1}) backlog) <= ${RESERVED_MAX_QUEUED}` : sql``}
            ORDER BY best.priority, start, s.tenant_id
            LIMIT ${CANDIDATES}`,
      );
      for (const candidate of candidates) {
        const job = await this.claimForTenant(tx, candidate, workerId);
        if (job) return job;
      }
      return undefined;
    });
    await releasePayloads(this.db, failedForGood);
    return claimed;
  }

  /** Pushes the lease forward while the worker is alive; false if the job is no longer its own. */
  async heartbeat(job: ClaimedJob, workerId: string): Promise<boolean> {
    const rows = await this.db.asPlatformAdmin("job-lease-heartbeat", (tx) =>
      queryRows<{ id: string }>(
        tx,
        sql`UPDATE jobs SET locked_until = now() + ${`${this.options.leaseMs} milliseconds`}::interval
            WHERE tenant_id = ${job.tenantId} AND id = ${job.id} AND status = 'running' AND locked_by = ${workerId}
            RETURNING id`,
      ),
    );
    return rows.length > 0;
  }

  private async claimForTenant(
    tx: Tx,
    candidate: { tenant_id: string; start: number; weight: number; max_running: number },
    workerId: string,
  ): Promise<ClaimedJob | undefined> {
    // The start tag is read again under the lock: another claimer may have advanced it since. The
    // lock is taken on the tenant's row alone (on Citus a locking read touches one shard only), and
    // the clock read after it.
    const locked = await queryRows<{ pass: number }>(
      tx,
      sql`SELECT pass FROM job_tenants WHERE tenant_id = ${candidate.tenant_id} FOR UPDATE SKIP LOCKED`,
    );
    if (locked.length === 0) return undefined; // another instance is claiming for this tenant
    const [clock] = await queryRows<{ virtual_time: number }>(tx, sql`SELECT virtual_time FROM job_clock WHERE id = 1`);
    // Re-read under the lock: the count above may predate a claim that just committed.
    const [running] = await queryRows<{ n: number }>(
      tx,
      sql`SELECT count(*)::int AS n FROM jobs WHERE tenant_id = ${candidate.tenant_id} AND status = 'running'`,
    );
    if (running!.n >= candidate.max_running) return undefined;
    const [picked] = await queryRows<{ id: string }>(
      tx,
      sql`SELECT j.id FROM jobs j
          WHERE j.tenant_id = ${candidate.tenant_id} AND ${this.runnable(sql`j`, sql`${candidate.tenant_id}`)}
          ORDER BY j.priority, j.created_at, j.id
          LIMIT 1
          FOR UPDATE OF j SKIP LOCKED`,
    );
    if (!picked) return undefined;
    const job = await this.markRunning(tx, candidate.tenant_id, picked.id, workerId);
    const start = Math.max(Number(locked[0]!.pass), Number(clock!.virtual_time));
    await tx.execute(
      sql`UPDATE job_tenants SET pass = ${start + 1 / Math.max(1, candidate.weight)} WHERE tenant_id = ${candidate.tenant_id}`,
    );
    await tx.execute(sql`UPDATE job_clock SET virtual_time = greatest(virtual_time, ${start}) WHERE id = 1`);
    return job;
  }

  /**
   * The benchmark's baseline: one global FIFO, no fairness, no per-tenant limit (suspended tenants
   * still wait). The oldest jobs are found without a lock, then locked one by one by tenant and id
   * (Citus: one shard per locking read; the join is on the distribution column, so it stays on the shard).
   */
  private async claimOldest(tx: Tx, workerId: string, onlyTenant: SQL): Promise<ClaimedJob | undefined> {
    const oldest = await queryRows<{ id: string; tenant_id: string }>(
      tx,
      sql`SELECT j.id, j.tenant_id FROM jobs j JOIN tenants t ON t.id = j.tenant_id
          WHERE ${this.runnable(sql`j`)} AND t.suspended_at IS NULL ${onlyTenant}
          ORDER BY j.created_at, j.id LIMIT ${CANDIDATES}`,
    );
    for (const job of oldest) {
      const [picked] = await queryRows<{ id: string }>(
        tx,
        sql`SELECT j.id FROM jobs j WHERE j.tenant_id = ${job.tenant_id} AND j.id = ${job.id}
              AND ${this.runnable(sql`j`, sql`${job.tenant_id}`)}
            FOR UPDATE OF j SKIP LOCKED`,
      );
      if (picked) return this.markRunning(tx, job.tenant_id, job.id, workerId);
    }
    return undefined;
  }

  private async markRunning(tx: Tx, tenantId: string, id: string, workerId: string): Promise<ClaimedJob> {
    const [row] = await queryRows<{
      id: string;
      tenant_id: string;
      kind: string;
      priority: number;
      input: Record<string, unknown>;
      attempts: number;
      max_attempts: number;
      key_id: string;
      project: string;
      environment: string;
      waited_ms: number;
    }>(
      tx,
      // No now() inside coalesce or RETURNING (Citus evaluates it on the coordinator only where it
      // stands alone): least() keeps the first start, and the wait is the new lease's start minus
      // when the job became due, both from the database's clock.
      sql`UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = ${workerId},
                 locked_until = now() + ${`${this.options.leaseMs} milliseconds`}::interval,
                 started_at = least(started_at, now())
          WHERE tenant_id = ${tenantId} AND id = ${id}
          RETURNING id, tenant_id, kind, priority, input, attempts, max_attempts, key_id, project, environment,
                    (extract(epoch FROM locked_until - run_after) * 1000)::float8 - ${this.options.leaseMs} AS waited_ms`,
    );
    return {
      id: row!.id,
      tenantId: row!.tenant_id,
      kind: row!.kind,
      priority: row!.priority,
      input: row!.input,
      attempts: row!.attempts,
      maxAttempts: row!.max_attempts,
      keyId: row!.key_id,
      project: row!.project,
      environment: row!.environment,
      waitedMs: Number(row!.waited_ms),
    };
  }

  /**
   * Jobs whose worker stopped renewing its lease (the process died) go back to the queue; after
   * their last attempt they fail as `worker_lost`. The budget held by the lost attempt is released.
   * Returns the jobs that failed, whose payloads' files go once the transaction commits.
   */
  private async requeueExpired(tx: Tx): Promise<PayloadKey[]> {
    // Found first without a lock, then each taken back on its own by tenant and id: on Citus a
    // locking read may only touch one shard, and here each statement does.
    const lapsed = await queryRows<{ tenant_id: string; id: string; attempts: number; max_attempts: number }>(
      tx,
      sql`SELECT tenant_id, id, attempts, max_attempts FROM jobs WHERE status = 'running' AND locked_until < now()
          ORDER BY locked_until LIMIT ${EXPIRED_PER_CLAIM}`,
    );
    const expired: { tenant_id: string; id: string; attempts: number; status: string }[] = [];
    for (const job of lapsed) {
      // Whether this was its last attempt is decided here, not in a CASE (Citus takes no now() in one).
      const lastAttempt = job.attempts >= job.max_attempts;
      const outcome = lastAttempt
        ? sql`status = 'failed', error_code = 'worker_lost', finished_at = now(), payload = NULL, payload_bytes = NULL`
        : sql`status = 'queued', finished_at = NULL`;
      const rows = await queryRows<{ tenant_id: string; id: string }>(
        tx,
        sql`UPDATE jobs SET ${outcome}, error_message = 'The worker running this job stopped (lease expired).',
                locked_by = NULL, locked_until = NULL
            WHERE tenant_id = ${job.tenant_id} AND (tenant_id, id) IN (
              -- Skips a row another session holds: one stuck row must not stall every claim. Checked
              -- again under the lock: a heartbeat may have renewed it, or another claimer taken it back.
              SELECT tenant_id, id FROM jobs
              WHERE tenant_id = ${job.tenant_id} AND id = ${job.id} AND status = 'running' AND locked_until < now()
                AND attempts = ${job.attempts}
              FOR UPDATE SKIP LOCKED)
            RETURNING tenant_id, id`,
      );
      for (const row of rows) expired.push({ ...row, attempts: job.attempts, status: lastAttempt ? "failed" : "queued" });
    }
    for (const job of expired) {
      await tx.execute(
        sql`DELETE FROM budget_reservations WHERE tenant_id = ${job.tenant_id} AND request_id = ${jobOperationId(job.id, job.attempts)}`,
      );
    }
    return expired.filter((job) => job.status === "failed").map((job) => ({ tenantId: job.tenant_id, jobId: job.id }));
  }
}

/**
 * The budget operation id of one attempt of a job: its reservation, released if the attempt is
 * lost, and its `failed` ledger records (so a later attempt's success is still recorded).
 */
export function jobOperationId(jobId: string, attempt: number): string {
  return `job:${jobId}:attempt-${attempt}`;
}

/**
 * The ledger id of a job's charged work, the same for every attempt: an attempt that charged and
 * then lost its lease, and the attempt that took over, count once (usage events are unique per id).
 */
export function jobChargeId(jobId: string): string {
  return `job:${jobId}`;
}
