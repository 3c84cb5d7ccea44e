import { sql } from "drizzle-orm";
import { queryRows, type TenantScope } from "../db/database.js";
import { PayloadTooLargeError, RateLimitedError, ValidationError } from "../core/errors.js";
import { refuseWhenBudgetSpent } from "../metering/budget-guard.js";
import { readTenantSettings } from "../plans/tenant-settings.js";

/**
 * When a tenant's full queue is likely to have room again: its oldest jobs take seconds to a
 * minute to run, so a client that waits this long finds room without polling hard.
 */
const QUEUE_FULL_RETRY_AFTER_SEC = 30;

/**
 * Admission for the durable queue, inside the enqueue transaction: an upload waits in the shared
 * jobs table (its bytes included) until a worker runs it, so without a bound one tenant could
 * fill the database and the queue for everyone — and a tenant with no budget left could queue
 * work that can only fail. Refused, in order: a tenant whose budget is spent (402); a request
 * larger than the whole cap on its own (400/413: waiting cannot help it); an upload that would
 * take the tenant past its plan's `max_queued_jobs` or `max_queued_bytes` of unfinished jobs
 * (429 `queue_full`, with Retry-After).
 *
 * The count and the insert must be atomic per tenant, on one instance or many, or concurrent
 * uploads would all see room: the caller holds the tenant's queue lock (`lockTenantQueue`) for
 * the rest of its transaction.
 */
export async function refuseOverQueueCaps(scope: TenantScope, incoming: { jobs: number; bytes: number }): Promise<void> {
  const settings = await readTenantSettings(scope);
  await refuseWhenBudgetSpent(scope, settings);
  const { maxQueuedJobs, maxQueuedBytes } = settings.plan;
  if (maxQueuedJobs !== null && incoming.jobs > maxQueuedJobs) {
    throw new ValidationError(`Invalid request: the tenant's plan queues at most ${maxQueuedJobs} jobs at once (got ${incoming.jobs})`);
  }
  if (maxQueuedBytes !== null && incoming.bytes > maxQueuedBytes) throw new PayloadTooLargeError(maxQueuedBytes);
  if (maxQueuedJobs === null && maxQueuedBytes === null) return;
  const [queued] = await queryRows<{ jobs: number; bytes: string }>(
    scope.tx,
    sql`SELECT count(*)::int AS jobs, coalesce(sum(payload_bytes), 0)::text AS bytes
        FROM jobs WHERE tenant_id = ${scope.tenantId} AND status IN ('queued', 'running')`,
  );
  const jobs = Number(queued?.jobs ?? 0);
  const bytes = Number(queued?.bytes ?? 0);
  const overJobs = maxQueuedJobs !== null && jobs + incoming.jobs > maxQueuedJobs;
  const overBytes = maxQueuedBytes !== null && bytes + incoming.bytes > maxQueuedBytes;
  if (overJobs || overBytes) throw new RateLimitedError("queue_full", QUEUE_FULL_RETRY_AFTER_SEC);
}

/** Serialises the queue admissions of one tenant (over all instances) until the transaction ends. */
export async function lockTenantQueue(scope: TenantScope): Promise<void> {
  await scope.tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`fence:queue:${scope.tenantId}`}, 0))`);
}
