import { and, desc, eq, gte, sql, type SQL } from "drizzle-orm";
import { queryRows, type Database, type TenantScope, type Tx } from "../db/database.js";
import { runs, tenants, type RunKind, type RunRow, type RunStatus } from "../db/schema.js";
import { addToRunsDaily, countRunsSince, percentileOfBuckets, trimRunsDaily } from "./run-daily.js";
import { NotFoundError, ValidationError } from "../core/errors.js";
import { isUuid, type TenantContext } from "../core/tenant-context.js";

export interface RunFilter {
  kind?: RunKind | undefined;
  status?: RunStatus | undefined;
  promptVersion?: string | undefined;
  requestId?: string | undefined;
  /** Runs that started at or after this instant. */
  since?: Date | undefined;
  limit: number;
  /** The last run id of the previous page. */
  cursor?: string | undefined;
}

export interface RunSummary {
  latency: { kind: RunKind; runs: number; p50Ms: number | null; p95Ms: number | null }[];
  notSucceeded: { kind: RunKind; status: RunStatus; code: string; runs: number }[];
}

export interface RunPage {
  runs: RunRow[];
  nextCursor: string | null;
}

/** What a request id may look like (the request-id middleware's own rule, and `job:<uuid>`). */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,200}$/;

/**
 * Run records in the database. A tenant reads its own runs inside `withTenant` (RLS), so another
 * tenant's run answers exactly like a missing one (I6); the admin reads any tenant's through the
 * audited platform role. Only the retention sweep deletes.
 */
export class RunStore {
  constructor(private readonly db: Database) {}

  /** Inserts the run and adds it to its day's counts (run-daily.ts), in one transaction. */
  async insert(ctx: TenantContext, row: Omit<typeof runs.$inferInsert, "tenantId">): Promise<void> {
    await this.db.withTenant(ctx, async (scope) => {
      await scope.tx.insert(runs).values({ ...row, tenantId: scope.tenantId });
      await addToRunsDaily(scope.tx, { ...row, tenantId: scope.tenantId });
    });
  }

  list(ctx: TenantContext, filter: RunFilter): Promise<RunPage> {
    return this.db.withTenant(ctx, (scope) => listRuns(scope.tx, scope.owns(runs.tenantId), scope.tenantId, filter));
  }

  /**
   * The tenant's runs since an instant, summed up per kind: how many, their latency p50 and p95
   * (succeeded runs only: a refusal's few milliseconds would flatter them), and the refusals and
   * failures by error code. The console's overview. Read from the daily rollup's latency buckets
   * (run-daily.ts), so p50 and p95 are within 5 % of the exact percentiles, at the cost of a few
   * thousand small rows for a month however many runs it held.
   */
  async summary(ctx: TenantContext, since: Date): Promise<RunSummary> {
    const counts = await this.db.withTenant(ctx, (scope) => countRunsSince(scope.tx, (column) => scope.owns(column), since));
    const latency = new Map<RunKind, { bucket: number; runs: number }[]>();
    const notSucceeded = new Map<string, RunSummary["notSucceeded"][number]>();
    for (const row of counts) {
      if (row.status === "succeeded") {
        latency.set(row.kind, [...(latency.get(row.kind) ?? []), row]);
        continue;
      }
      const key = `${row.kind}\u0000${row.status}\u0000${row.code}`;
      const entry = notSucceeded.get(key) ?? { kind: row.kind, status: row.status, code: row.code || "unknown", runs: 0 };
      entry.runs += row.runs;
      notSucceeded.set(key, entry);
    }
    return {
      latency: [...latency].map(([kind, buckets]) => {
        buckets.sort((a, b) => a.bucket - b.bucket);
        return { kind, runs: buckets.reduce((n, b) => n + b.runs, 0), p50Ms: percentileOfBuckets(buckets, 0.5), p95Ms: percentileOfBuckets(buckets, 0.95) };
      }),
      notSucceeded: [...notSucceeded.values()].sort((a, b) => b.runs - a.runs),
    };
  }

  /** The newest of the tenant's runs with this request id (a job's attempts share one). */
  async get(ctx: TenantContext, requestId: string): Promise<RunRow> {
    const row = REQUEST_ID.test(requestId)
      ? await this.db.withTenant(ctx, (scope) => newestByRequest(scope.tx, scope.owns(runs.tenantId), requestId))
      : undefined;
    if (!row) throw new NotFoundError("Run");
    return row;
  }

  /** One of the tenant's runs by run id or request id (eval cases are made from either). */
  async find(scope: TenantScope, ref: { runId?: string | undefined; requestId?: string | undefined }): Promise<RunRow | undefined> {
    if (ref.runId !== undefined) {
      if (!isUuid(ref.runId)) return undefined;
      const [row] = await scope.tx
        .select()
        .from(runs)
        .where(and(scope.owns(runs.tenantId), eq(runs.id, ref.runId)));
      return row;
    }
    if (ref.requestId === undefined || !REQUEST_ID.test(ref.requestId)) return undefined;
    return newestByRequest(scope.tx, scope.owns(runs.tenantId), ref.requestId);
  }

  /** Platform admin: any tenant's runs. An unknown tenant is a 404, not an empty list. */
  async listForTenant(tenantId: string, filter: RunFilter): Promise<RunPage> {
    if (!isUuid(tenantId)) throw new NotFoundError("Tenant");
    return this.db.asPlatformAdmin("admin-read-runs", async (tx) => {
      await assertTenantExists(tx, tenantId);
      return listRuns(tx, eq(runs.tenantId, tenantId), tenantId, filter);
    });
  }

  async getForTenant(tenantId: string, requestId: string): Promise<RunRow> {
    if (!isUuid(tenantId)) throw new NotFoundError("Tenant");
    const row = await this.db.asPlatformAdmin("admin-read-runs", async (tx) => {
      await assertTenantExists(tx, tenantId);
      return REQUEST_ID.test(requestId) ? newestByRequest(tx, eq(runs.tenantId, tenantId), requestId) : undefined;
    });
    if (!row) throw new NotFoundError("Run");
    return row;
  }

  /**
   * Retention: deletes runs that started before `before`, at most `batchSize` rows per
   * statement, until none are left or `maxBatches` ran. Each batch walks the tenants and takes
   * each one's oldest expired runs through its own (tenant_id, started_at) index, so no index
   * without tenant_id first is needed and no statement holds many locks for long.
   */
  async deleteExpired(before: Date, options: { batchSize?: number; maxBatches?: number } = {}): Promise<number> {
    const batchSize = options.batchSize ?? 1000;
    const maxBatches = options.maxBatches ?? 100;
    let deleted = 0;
    for (let batch = 0; batch < maxBatches; batch++) {
      const rows = await this.db.asPlatformAdmin("run-retention-sweep", async (tx) => {
        // Found first, then deleted tenant by tenant: on Citus each delete is then one shard's.
        const expired = await queryRows<{ tenant_id: string; id: string }>(
          tx,
          sql`SELECT x.tenant_id, x.id FROM tenants t
              CROSS JOIN LATERAL (
                SELECT e.tenant_id, e.id FROM runs e
                WHERE e.tenant_id = t.id AND e.started_at < ${before.toISOString()}::timestamptz
                ORDER BY e.started_at
                LIMIT ${batchSize}
              ) x
              LIMIT ${batchSize}`,
        );
        const byTenant = new Map<string, string[]>();
        for (const run of expired) {
          const ids = byTenant.get(run.tenant_id) ?? [];
          ids.push(run.id);
          byTenant.set(run.tenant_id, ids);
        }
        const gone: { id: string }[] = [];
        for (const [tenantId, runIds] of byTenant) {
          const ids = sql.join(runIds.map((id) => sql`${id}::uuid`), sql`, `);
          gone.push(...(await queryRows<{ id: string }>(tx, sql`DELETE FROM runs WHERE tenant_id = ${tenantId} AND id IN (${ids}) RETURNING id`)));
          // And the tenant's daily counts of days now wholly expired (the sweep that deletes a
          // day's last runs is the one that drops its counts).
          await trimRunsDaily(tx, before, tenantId);
        }
        return gone;
      });
      deleted += rows.length;
      if (rows.length < batchSize) break;
    }
    return deleted;
  }
}

async function assertTenantExists(tx: Tx, tenantId: string): Promise<void> {
  const [row] = await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId));
  if (!row) throw new NotFoundError("Tenant");
}

async function newestByRequest(tx: Tx, owns: SQL, requestId: string): Promise<RunRow | undefined> {
  const [row] = await tx
    .select()
    .from(runs)
    .where(and(owns, eq(runs.requestId, requestId)))
    .orderBy(desc(runs.startedAt), desc(runs.id))
    .limit(1);
  return row;
}

/** Newest first; `owns` is the tenant predicate (RLS is the backstop for tenant reads). */
async function listRuns(tx: Tx, owns: SQL, tenantId: string, filter: RunFilter): Promise<RunPage> {
  const conditions: SQL[] = [owns];
  if (filter.kind) conditions.push(eq(runs.kind, filter.kind));
  if (filter.status) conditions.push(eq(runs.status, filter.status));
  if (filter.promptVersion) conditions.push(eq(runs.promptVersion, filter.promptVersion));
  if (filter.requestId) conditions.push(eq(runs.requestId, filter.requestId));
  if (filter.since) conditions.push(gte(runs.startedAt, filter.since));
  if (filter.cursor) {
    const [after] = isUuid(filter.cursor)
      ? await tx.select({ id: runs.id }).from(runs).where(and(owns, eq(runs.id, filter.cursor)))
      : [];
    // Another tenant's run id answers exactly like a made-up one (I6).
    if (!after) throw new ValidationError("Invalid pagination cursor.");
    // Compared in the database: started_at has microseconds, a JavaScript Date only milliseconds.
    conditions.push(
      sql`(${runs.startedAt}, ${runs.id}) < ((SELECT c.started_at FROM runs c WHERE c.tenant_id = ${tenantId} AND c.id = ${after.id}), ${after.id}::uuid)`,
    );
  }
  const rows = await tx
    .select()
    .from(runs)
    .where(and(...conditions))
    .orderBy(desc(runs.startedAt), desc(runs.id))
    .limit(filter.limit + 1);
  const page = rows.slice(0, filter.limit);
  return { runs: page, nextCursor: rows.length > filter.limit ? page.at(-1)!.id : null };
}
