import { sql } from "drizzle-orm";
import { queryRows, type Database } from "../db/database.js";
import { PRIORITY_RANK, type JobPriority } from "./job-queue.js";

export interface QueueDepth {
  tenantId: string;
  status: "queued" | "running";
  priority: JobPriority;
  count: number;
}

const PRIORITY_NAME = Object.fromEntries(Object.entries(PRIORITY_RANK).map(([name, rank]) => [rank, name])) as Record<number, JobPriority>;

/**
 * Jobs waiting or running, per tenant, status and priority, over every instance: read by the
 * metrics at scrape time. It counts across tenants, so it is an audited platform operation; it
 * returns counts and ids only. Ended jobs are left out: they pile up forever and are not a queue.
 */
export async function readQueueDepth(db: Database): Promise<QueueDepth[]> {
  const rows = await db.asPlatformAdmin("metrics-job-queue-depth", (tx) =>
    queryRows<{ tenant_id: string; status: "queued" | "running"; priority: number; n: number }>(
      tx,
      sql`SELECT tenant_id, status, priority, count(*)::int AS n FROM jobs
          WHERE status IN ('queued', 'running')
          GROUP BY tenant_id, status, priority`,
    ),
  );
  return rows.map((r) => ({ tenantId: r.tenant_id, status: r.status, priority: PRIORITY_NAME[r.priority] ?? "bulk", count: Number(r.n) }));
}
