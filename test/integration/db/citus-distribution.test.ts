import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CO_LOCATED_TABLES, REFERENCE_TABLES } from "../../../src/db/citus.js";
import { queryRows } from "../../../src/db/database.js";
import { issueTenantContext } from "../../../src/core/tenant-context.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { postgresErrorOf } from "../../support/isolation-helpers.js";

/**
 * Fence on a Citus cluster (issue 17): what db/citus.ts promises, read from the cluster itself.
 * The rest of the proof is every other integration suite running on the `citus` backend too: with
 * a tenant transaction refusing any statement planned on more than one shard, a suite that passes
 * there made only single-shard (router) queries for its tenants.
 */
const citus = backends.find((b) => b.name === "citus");

describe.skipIf(!citus)("Fence on a Citus cluster", () => {
  let fence: TestFence;
  let a: TestTenant;
  let b: TestTenant;

  beforeAll(async () => {
    fence = await TestFence.start(citus!);
    a = await fence.createTenant("citus-a");
    b = await fence.createTenant("citus-b");
    await fence.upload(a, { title: "Alpha", text: "Alpha tenant's notes on the harbour crane schedule." });
    await fence.upload(b, { title: "Beta", text: "Beta tenant's notes on the orchard irrigation plan." });
  });
  afterAll(() => fence?.close());

  const asOwner = <T>(query: ReturnType<typeof sql>) => fence.fence.db.asOwner((tx) => queryRows<T>(tx, query));
  const contextOf = (tenant: TestTenant) => issueTenantContext({ tenantId: tenant.id, keyId: tenant.keyId, project: "default", environment: "prod", scopes: ["owner"], requestId: "citus-test" });

  it("distributes every tenant-owned table by tenant, co-located with tenants, and copies the platform tables to every node", async () => {
    const rows = await asOwner<{ table: string; method: string; column: string | null; colocation: number }>(
      sql`SELECT logicalrelid::regclass::text AS table, partmethod AS method,
                 column_to_column_name(logicalrelid, partkey) AS column, colocationid AS colocation
          FROM pg_dist_partition`,
    );
    const byTable = new Map(rows.map((r) => [r.table, r]));
    const tenants = byTable.get("tenants");
    expect(tenants).toMatchObject({ method: "h", column: "id" });
    for (const table of CO_LOCATED_TABLES) {
      expect(byTable.get(table), table).toMatchObject({ method: "h", column: "tenant_id", colocation: tenants!.colocation });
    }
    for (const table of REFERENCE_TABLES) expect(byTable.get(table)?.method, table).toBe("n");
    // Every table of the schema is one or the other: none is left on the coordinator alone.
    const publicTables = await asOwner<{ name: string }>(
      sql`SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'`,
    );
    expect(publicTables.map((t) => t.name).sort()).toEqual(["tenants", ...CO_LOCATED_TABLES, ...REFERENCE_TABLES].sort());
  });

  it("runs tenant transactions as fence_app on the workers too: another tenant's rows are not there even when asked for by id", async () => {
    const seen = await fence.fence.db.withTenant(contextOf(a), (scope) =>
      queryRows<{ own: number; other: number; role: string }>(
        scope.tx,
        // Both counts are single-shard: each names its tenant. The second lands on B's shard, where
        // row-level security, with A's tenant id propagated to that worker, leaves nothing.
        sql`SELECT (SELECT count(*)::int FROM documents WHERE tenant_id = ${a.id}) AS own,
                   (SELECT count(*)::int FROM documents WHERE tenant_id = ${b.id}) AS other,
                   current_user AS role`,
      ),
    );
    expect(seen).toEqual([{ own: 1, other: 0, role: "fence_app" }]);
  });

  it("refuses, in a tenant transaction, a statement that would run on every shard", async () => {
    const fanOut = fence.fence.db.withTenant(contextOf(a), (scope) => queryRows(scope.tx, sql`SELECT count(*) FROM documents`));
    expect((await postgresErrorOf(fanOut)).message).toMatch(/multi-task query about to be executed/);
    // The same count with its tenant predicate is one task, and allowed.
    const own = await fence.fence.db.withTenant(contextOf(a), (scope) =>
      queryRows<{ n: number }>(scope.tx, sql`SELECT count(*)::int AS n FROM documents WHERE tenant_id = ${a.id}`),
    );
    expect(own).toEqual([{ n: 1 }]);
  });

  it("keeps a tenant's document, chunks and ledger on one shard", async () => {
    const shards = await asOwner<{ table: string; shard: string }>(
      sql`SELECT t AS table, get_shard_id_for_distribution_column(t, ${a.id}::uuid)::text AS shard
          FROM unnest(ARRAY['documents', 'chunks', 'usage_events', 'runs']) AS t`,
    );
    const placements = await asOwner<{ shard: string; port: number }>(
      sql`SELECT shardid::text AS shard, nodeport AS port FROM pg_dist_shard_placement
          WHERE shardid IN (${sql.join(shards.map((s) => sql`${s.shard}::bigint`), sql`, `)})`,
    );
    expect(new Set(placements.map((p) => p.port)).size).toBe(1);
  });
});
