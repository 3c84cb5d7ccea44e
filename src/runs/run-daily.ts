import { and, gte, lt, sql, type SQL } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import { queryRows, type Tx } from "../db/database.js";
import { runs, runsDaily, type RunKind, type RunStatus } from "../db/schema.js";

/**
 * The runs' daily rollup (`runs_daily`): runs counted per UTC day, kind, status, error code and
 * latency bucket. RunStore.insert adds each run in its own transaction; the overview's latency
 * p50/p95 and refusals by reason read whole days from here, so a month of a busy tenant's runs is
 * a few thousand small rows, not every run with its steps.
 */

const DAY_MS = 24 * 60 * 60 * 1000;
/** Each latency bucket is 10 % wide: bucket b holds latencies in [1.1^b − 1, 1.1^(b+1) − 1) ms. */
const BUCKET_BASE = 1.1;

/** The bucket of a latency, computed by the database on insert, rebuild and read alike (one float formula, one engine). */
export function latencyBucketOf(latencyMs: SQL | AnyPgColumn): SQL {
  return sql`floor(ln(1 + greatest(${latencyMs}, 0)::float8) / ln(${BUCKET_BASE}::float8))::smallint`;
}

/** Adds one run to its day's counts, in the transaction that inserts the run. */
export async function addToRunsDaily(
  tx: Tx,
  run: { tenantId: string; startedAt: Date; kind: RunKind; status: RunStatus; errorCode?: string | null | undefined; latencyMs: number },
): Promise<void> {
  await tx.execute(
    sql`INSERT INTO ${runsDaily} (tenant_id, day, kind, status, error_code, latency_bucket, runs)
        VALUES (${run.tenantId}, (${run.startedAt.toISOString()}::timestamptz AT TIME ZONE 'UTC')::date, ${run.kind}, ${run.status},
          ${run.errorCode ?? ""}, ${latencyBucketOf(sql`${run.latencyMs}::int`)}, 1)
        ON CONFLICT (tenant_id, day, kind, status, error_code, latency_bucket) DO UPDATE SET runs = ${runsDaily.runs} + 1`,
  );
}

/** Recounts the rollup from the runs, for one tenant or all; as the platform (a seeded benchmark, a correction by hand). */
export async function rebuildRunsDaily(tx: Tx, tenantId?: string): Promise<void> {
  const ofTenant = (column: AnyPgColumn) => (tenantId === undefined ? sql`true` : sql`${column} = ${tenantId}`);
  await tx.execute(sql`DELETE FROM ${runsDaily} WHERE ${ofTenant(runsDaily.tenantId)}`);
  await tx.execute(
    sql`INSERT INTO ${runsDaily} (tenant_id, day, kind, status, error_code, latency_bucket, runs)
        SELECT ${runs.tenantId}, (${runs.startedAt} AT TIME ZONE 'UTC')::date, ${runs.kind}, ${runs.status}, coalesce(${runs.errorCode}, ''),
          ${latencyBucketOf(runs.latencyMs)}, count(*)
        FROM ${runs} WHERE ${ofTenant(runs.tenantId)}
        GROUP BY 1, 2, 3, 4, 5, 6`,
  );
}

/**
 * Drops a tenant's days whose runs have all expired (the retention sweep deletes runs that started
 * before `before`): a day keeps its counts until its last run is gone, so the rollup never counts
 * less than the runs that remain. One tenant at a time, through the primary key (tenant, day, …):
 * on Citus one shard's rows.
 */
export async function trimRunsDaily(tx: Tx, before: Date, tenantId: string): Promise<void> {
  const firstKeptDay = new Date(Math.floor(before.getTime() / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
  await tx.execute(sql`DELETE FROM ${runsDaily} WHERE ${runsDaily.tenantId} = ${tenantId} AND ${runsDaily.day} < ${firstKeptDay}`);
}

export interface RunCount {
  kind: RunKind;
  status: RunStatus;
  code: string;
  bucket: number;
  runs: number;
}

/**
 * The tenant's runs since an instant, counted per kind, status, code and latency bucket: the whole
 * UTC days from the rollup, the part of the first day after `since` from the runs themselves.
 * `owns` is the tenant scope's filter (scope.owns).
 */
export async function countRunsSince(tx: Tx, owns: (column: AnyPgColumn) => SQL, since: Date): Promise<RunCount[]> {
  const firstWholeDay = Math.ceil(since.getTime() / DAY_MS) * DAY_MS;
  const parts: SQL[] = [
    sql`SELECT ${runsDaily.kind} AS kind, ${runsDaily.status} AS status, ${runsDaily.errorCode} AS code, ${runsDaily.latencyBucket} AS bucket,
          sum(${runsDaily.runs}) AS runs
        FROM ${runsDaily}
        WHERE ${and(owns(runsDaily.tenantId), gte(runsDaily.day, new Date(firstWholeDay).toISOString().slice(0, 10)))}
        GROUP BY 1, 2, 3, 4`,
  ];
  if (since.getTime() < firstWholeDay) {
    parts.push(
      sql`SELECT ${runs.kind}, ${runs.status}, coalesce(${runs.errorCode}, ''), ${latencyBucketOf(runs.latencyMs)}, count(*)
          FROM ${runs}
          WHERE ${and(owns(runs.tenantId), gte(runs.startedAt, since), lt(runs.startedAt, new Date(firstWholeDay)))}
          GROUP BY 1, 2, 3, 4`,
    );
  }
  const rows = await queryRows<{ kind: RunKind; status: RunStatus; code: string; bucket: number | string; runs: string }>(
    tx,
    sql`SELECT kind, status, code, bucket, sum(runs)::text AS runs FROM (${sql.join(parts, sql` UNION ALL `)}) AS parts
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
  );
  return rows.map((r) => ({ kind: r.kind, status: r.status, code: r.code, bucket: Number(r.bucket), runs: Number(r.runs) }));
}

/**
 * A percentile (0–1) of a latency histogram, interpolated within its bucket as percentile_cont
 * interpolates between values: within half a bucket (5 %) of the exact percentile. Buckets in
 * ascending order; null when there are no runs.
 */
export function percentileOfBuckets(buckets: readonly { bucket: number; runs: number }[], p: number): number | null {
  const total = buckets.reduce((n, b) => n + b.runs, 0);
  if (total === 0) return null;
  const position = (total - 1) * p; // percentile_cont's position among the sorted values
  let before = 0;
  for (const { bucket, runs: count } of buckets) {
    if (position < before + count) {
      const low = BUCKET_BASE ** bucket - 1;
      const high = BUCKET_BASE ** (bucket + 1) - 1;
      // The bucket's values taken as spread evenly through it: its i-th value at (i + 0.5) / count.
      return low + ((high - low) * (position - before + 0.5)) / count;
    }
    before += count;
  }
  return BUCKET_BASE ** (buckets[buckets.length - 1]!.bucket + 1) - 1;
}
