import { sql } from "drizzle-orm";
import { queryRows, type Database, type Tx } from "./database.js";
import { ownRowsCondition, PLATFORM_ROLE, TENANT_ROLE } from "./schema/rls.js";

/**
 * Fence on a Citus cluster (issue 17): every tenant-owned table distributed by tenant and
 * co-located with `tenants`, so one tenant's documents, chunks, runs, ledger and jobs sit on one
 * shard and every tenant query is a single-shard (router) query; plans, prices and the job
 * scheduler's clock are reference tables, copied to every node.
 *
 * The regular migrations (drizzle/) run first and stay the one description of the schema; this
 * turns their single-node schema into a distributed one, idempotently, after each run. What differs
 * on Citus, as measured on a three-node Citus 13.2 cluster:
 * - RLS policies on distributed tables may not contain subqueries: the `(SELECT current_setting…)`
 *   form becomes the plain call (evaluated per row; cheap, and the explicit tenant predicate that
 *   every query carries is what the planner uses).
 * - Citus opens its connections to the workers as the current role, so the two roles need LOGIN.
 * - A unique index must contain the distribution column: `api_keys.key_hash` is unique per tenant
 *   (keys are 32 random bytes; see tenancy/api-keys.ts for why global uniqueness does not matter).
 * - Triggers on distributed tables would run on the workers, whose NOTIFY no instance hears: the
 *   key change triggers go, and Fence announces those changes itself (db/key-changes.ts).
 * - Foreign keys are dropped while tables are distributed and put back after, unchanged.
 */

/** Tables that belong to a tenant, distributed by `tenant_id` next to their tenant's `tenants` row. */
export const CO_LOCATED_TABLES = [
  "api_keys",
  "documents",
  "chunks",
  "tenant_configs",
  "usage_events",
  "usage_counters",
  "usage_daily",
  "runs_daily",
  "budget_reservations",
  "job_tenants",
  "jobs",
  "runs",
  "eval_cases",
  "audit_events",
] as const;

/**
 * Small platform tables copied to every node: read by every tenant's queries (joins), or, for the
 * console's ended sessions, belonging to no tenant at all.
 */
export const REFERENCE_TABLES = ["plans", "prices", "job_clock", "console_sessions_ended"] as const;

const KEY_CHANGE_TRIGGERS = [
  ["api_keys_announce_change", "api_keys"],
  ["api_keys_announce_update", "api_keys"],
  ["tenants_announce_change", "tenants"],
  ["tenants_announce_delete", "tenants"],
  ["plans_announce_change", "plans"],
] as const;

/** Whether the database has the `citus` extension (the cluster's coordinator). */
export async function hasCitus(db: Database): Promise<boolean> {
  const rows = await db.asOwner((tx) => queryRows<{ one: number }>(tx, sql`SELECT 1 AS one FROM pg_extension WHERE extname = 'citus'`));
  return rows.length > 0;
}

/**
 * Distributes the migrated schema on a Citus coordinator; a no-op once done. One transaction, under
 * the migrations' advisory lock, so instances starting together distribute once.
 */
export async function distributeOnCitus(db: Database): Promise<boolean> {
  return db.asOwner(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext('fence:migrations'))`);
    if (await isDistributed(tx, "tenants")) return distributeTablesAddedSince(tx);
    // Foreign keys to reference tables make Citus run everything after them over one connection per node.
    await tx.execute(sql`SET LOCAL citus.multi_shard_modify_mode TO 'sequential'`);
    await allowLogin(tx);
    for (const [trigger, table] of KEY_CHANGE_TRIGGERS) await tx.execute(sql.raw(`DROP TRIGGER IF EXISTS ${trigger} ON ${table}`));
    for (const table of CO_LOCATED_TABLES) {
      if (table === "job_tenants") continue; // no policy for fence_app: platform only
      const own = ownRowsCondition("tenant_id", "citus");
      await tx.execute(sql.raw(`ALTER POLICY tenant_isolation ON ${table} USING (${own}) WITH CHECK (${own})`));
    }
    const self = ownRowsCondition("id", "citus");
    await tx.execute(sql.raw(`ALTER POLICY tenant_self ON tenants USING (${self}) WITH CHECK (${self})`));
    await tx.execute(sql`DROP INDEX api_keys_key_hash_idx`);
    await tx.execute(sql`CREATE UNIQUE INDEX api_keys_key_hash_idx ON api_keys (tenant_id, key_hash)`);

    const foreignKeys = await queryRows<{ tbl: string; name: string; def: string }>(
      tx,
      sql`SELECT (SELECT relname FROM pg_class WHERE oid = conrelid) AS tbl, conname AS name, pg_get_constraintdef(oid) AS def
          FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace ORDER BY conrelid, conname`,
    );
    for (const fk of foreignKeys) await tx.execute(sql`ALTER TABLE ${sql.identifier(fk.tbl)} DROP CONSTRAINT ${sql.identifier(fk.name)}`);
    for (const table of REFERENCE_TABLES) {
      await tx.execute(sql`SELECT create_reference_table(${table})`);
      // Their seed rows were copied to the nodes; the coordinator's local copy is no longer read.
      await tx.execute(sql`SELECT truncate_local_data_after_distributing_table(${table})`);
    }
    await tx.execute(sql`SELECT create_distributed_table('tenants', 'id')`);
    for (const table of CO_LOCATED_TABLES) {
      await tx.execute(sql`SELECT create_distributed_table(${table}, 'tenant_id', colocate_with => 'tenants')`);
    }
    for (const fk of foreignKeys) {
      await tx.execute(sql`ALTER TABLE ${sql.identifier(fk.tbl)} ADD CONSTRAINT ${sql.identifier(fk.name)} ${sql.raw(fk.def)}`);
    }
    return true;
  });
}

/**
 * LOGIN for the two roles, where they lack it. Roles belong to the whole cluster, not to a database:
 * a second database distributed later finds them ready (and an ALTER of a role other sessions alter
 * at the same moment would fail with "tuple concurrently updated").
 */
async function allowLogin(tx: Tx): Promise<void> {
  const roles = await queryRows<{ rolname: string }>(
    tx,
    sql`SELECT rolname FROM pg_roles WHERE rolname IN (${TENANT_ROLE}, ${PLATFORM_ROLE}) AND NOT rolcanlogin`,
  );
  for (const { rolname } of roles) await tx.execute(sql`ALTER ROLE ${sql.identifier(rolname)} LOGIN`);
}

/**
 * A migration after the cluster was distributed creates its tables on the coordinator only: they
 * are distributed (or made reference tables) here (their policies are written in the per-row form,
 * see schema/rls.ts).
 */
async function distributeTablesAddedSince(tx: Tx): Promise<boolean> {
  let distributed = false;
  for (const table of REFERENCE_TABLES) {
    if (await isDistributed(tx, table)) continue;
    await tx.execute(sql`SELECT create_reference_table(${table})`);
    await tx.execute(sql`SELECT truncate_local_data_after_distributing_table(${table})`);
    distributed = true;
  }
  for (const table of CO_LOCATED_TABLES) {
    if (await isDistributed(tx, table)) continue;
    await tx.execute(sql`SELECT create_distributed_table(${table}, 'tenant_id', colocate_with => 'tenants')`);
    distributed = true;
  }
  return distributed;
}

async function isDistributed(tx: Tx, table: string): Promise<boolean> {
  const rows = await queryRows<{ one: number }>(tx, sql`SELECT 1 AS one FROM pg_dist_partition WHERE logicalrelid = ${table}::regclass`);
  return rows.length > 0;
}
