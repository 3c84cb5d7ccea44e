import pg from "pg";
import { isUuid } from "../core/tenant-context.js";
import { PLATFORM_ROLE } from "./schema/rls.js";

/**
 * A large tenant on a shard of its own (issue 17). On Citus every tenant-owned table is distributed
 * by tenant and co-located with `tenants` (db/citus.ts), so one call moves all of a tenant's rows:
 * `isolate_tenant_to_new_shard('tenants', id, 'CASCADE')` splits the hash range of the shard group
 * that holds the tenant into three — the values below it, the tenant alone, the values above — and
 * optionally `citus_move_shard_placement` then moves the tenant's new shard group to another node.
 *
 * Both run while Fence serves the tenant, with `block_writes`: the tenant's writes, and those of the
 * neighbours that shared its shard, wait (they are not refused) while its rows are copied; reads go
 * on. Every tenant statement names its tenant (the application filter), so each is routed to
 * whichever shard holds that tenant when it runs.
 *
 * Why not Citus' non-blocking transfer (logical replication): on PostgreSQL 15 the copy is applied
 * by a role Citus makes for the move, with the table owner's rights but not a superuser's, and
 * PostgreSQL refuses to replicate into a table whose row-level security applies to that role —
 * which FORCE ROW LEVEL SECURITY, on every Fence table, makes it do ("cannot replicate into
 * relation with row-level security enabled"; the move then waits forever). Lifting FORCE for the
 * move takes an exclusive lock on every shard of every tenant table, which under load ended in a
 * distributed deadlock when tried here. So Fence moves tenants with `block_writes`, and a failed move's
 * leftovers (slots, subscriptions, roles: cluster-wide objects) are cleaned up at once.
 *
 * This is an operator's task, run as the database owner (the migrations' role), outside any
 * request: `npm run citus:isolate-tenant -- <tenant_id>` (scripts/citus-isolate-tenant.ts).
 */
export interface TenantShard {
  /** The tenant's shard of `tenants`; its co-located shards of every other table follow it. */
  shardId: number;
  /** The node holding it, `host:port`. */
  node: string;
  /** Whether the shard's hash range holds this tenant alone. */
  alone: boolean;
}

export interface IsolateOptions {
  /** Move the tenant's shard group to this node afterwards (`host:port`, a node of the cluster). */
  toNode?: string;
}

export class TenantShardError extends Error {}

/** Where a tenant's rows live on a Citus cluster. */
export async function tenantShard(client: pg.ClientBase, tenantId: string): Promise<TenantShard> {
  const { rows } = await client.query<{ shardid: string; lo: string; hi: string; nodename: string; nodeport: number }>(
    `SELECT s.shardid, s.shardminvalue AS lo, s.shardmaxvalue AS hi, n.nodename, n.nodeport
       FROM pg_dist_shard s
       JOIN pg_dist_placement p ON p.shardid = s.shardid
       JOIN pg_dist_node n ON n.groupid = p.groupid
      WHERE s.shardid = get_shard_id_for_distribution_column('tenants', $1::uuid)`,
    [tenantId],
  );
  const row = rows[0];
  if (!row) throw new TenantShardError("tenants is not a distributed table here (run Fence once against the Citus coordinator)");
  return { shardId: Number(row.shardid), node: `${row.nodename}:${row.nodeport}`, alone: row.lo === row.hi };
}

/**
 * Gives `tenantId` a shard group of its own (a no-op when it has one) and, with `toNode`, moves it
 * there. Returns where the tenant was and where it is now.
 */
export async function isolateTenantShard(
  databaseUrl: string,
  tenantId: string,
  options: IsolateOptions = {},
): Promise<{ before: TenantShard; after: TenantShard }> {
  if (!isUuid(tenantId)) throw new TenantShardError(`not a tenant id: ${tenantId}`);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await assertTenantExists(client, tenantId);
    const before = await tenantShard(client, tenantId);
    if (!before.alone) {
      await transferring(client, () =>
        client.query(`SELECT isolate_tenant_to_new_shard('tenants', $1::uuid, 'CASCADE', shard_transfer_mode => 'block_writes')`, [tenantId]),
      );
    }
    let after = await tenantShard(client, tenantId);
    if (options.toNode && options.toNode !== after.node) {
      const [from, to] = [splitNode(after.node), splitNode(options.toNode)];
      await transferring(client, () =>
        client.query(`SELECT citus_move_shard_placement($1, $2, $3, $4, $5, shard_transfer_mode => 'block_writes')`, [
          after.shardId,
          from.host,
          from.port,
          to.host,
          to.port,
        ]),
      );
      after = await tenantShard(client, tenantId);
    }
    return { before, after };
  } finally {
    await client.end();
  }
}

/** Runs one split or move; a failed one's leftovers are removed so they do not block the next. */
async function transferring(client: pg.ClientBase, transfer: () => Promise<unknown>): Promise<void> {
  try {
    await transfer();
  } catch (error) {
    await client.query("CALL citus_cleanup_orphaned_resources()").catch(() => undefined);
    throw error;
  }
}

/** A typo'd id would otherwise split off an empty range. Read as the platform role (RLS is forced). */
async function assertTenantExists(client: pg.ClientBase, tenantId: string): Promise<void> {
  await client.query("BEGIN");
  try {
    await client.query(`SET LOCAL citus.propagate_set_commands = 'local'; SET LOCAL ROLE ${PLATFORM_ROLE}`);
    const { rows } = await client.query("SELECT 1 FROM tenants WHERE id = $1::uuid", [tenantId]);
    if (rows.length === 0) throw new TenantShardError(`no tenant ${tenantId}`);
  } finally {
    await client.query("ROLLBACK");
  }
}

function splitNode(node: string): { host: string; port: number } {
  const at = node.lastIndexOf(":");
  const port = Number(node.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port <= 0) throw new TenantShardError(`not a node (host:port): ${node}`);
  return { host: node.slice(0, at), port };
}
