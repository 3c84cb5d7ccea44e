import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../../src/db/database.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";

/**
 * Purging a tenant removes every row it owns, in every table that has a `tenant_id` — found from
 * the catalogue, so a table added later (the daily usage rollup, which has no foreign key to
 * cascade from) is checked without this test naming it. The audit trail alone outlives the tenant,
 * by design: its last event is the purge.
 */

/** Tables kept after a purge on purpose. */
const OUTLIVES_THE_TENANT = new Set(["audit_events"]);

describe.each(backends)("purging a tenant on $name", (backend) => {
  let fence: TestFence;
  let tenant: TestTenant;
  let bystander: TestTenant;

  /** Rows of `tenantId` in each table with a tenant_id column, read as the owner (no RLS). */
  const rowsPerTable = async (tenantId: string): Promise<Record<string, number>> =>
    fence.fence.db.asOwner(async (tx) => {
      const tables = await queryRows<{ table_name: string }>(
        tx,
        sql`SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
            WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE' ORDER BY 1`,
      );
      const counts: Record<string, number> = {};
      for (const { table_name } of tables) {
        const [row] = await queryRows<{ n: string | number }>(
          tx,
          sql`SELECT count(*) AS n FROM ${sql.identifier(table_name)} WHERE tenant_id = ${tenantId}::uuid`,
        );
        counts[table_name] = Number(row!.n);
      }
      const [self] = await queryRows<{ n: string | number }>(tx, sql`SELECT count(*) AS n FROM tenants WHERE id = ${tenantId}::uuid`);
      counts.tenants = Number(self!.n);
      return counts;
    });

  beforeAll(async () => {
    fence = await TestFence.start(backend);
    tenant = await fence.createTenant();
    bystander = await fence.createTenant();
    for (const t of [tenant, bystander]) {
      await fence.upload(t, { text: "# Purge\n\nA document whose embedding is metered, with a run and usage rows." });
      const search = await fence.request("POST", "/v1/search", { key: t.key, json: { query: "metered embedding", k: 3 } });
      expect(search.status).toBe(200);
    }
  });
  afterAll(async () => {
    if (bystander) await fence.admin("DELETE", `/tenants/${bystander.id}`);
    await fence?.close();
  });

  it("leaves no row of the tenant in any tenant-owned table, and the bystander's rows as they were", async () => {
    const before = await rowsPerTable(tenant.id);
    // Not vacuous: the tables a purge is most likely to miss hold rows of the tenant.
    for (const table of ["documents", "chunks", "usage_events", "usage_counters", "usage_daily", "runs", "api_keys", "tenants"]) {
      expect({ table, rows: before[table] }).toEqual({ table, rows: expect.any(Number) });
      expect(before[table], table).toBeGreaterThan(0);
    }
    const bystanderBefore = await rowsPerTable(bystander.id);

    expect((await fence.admin("DELETE", `/tenants/${tenant.id}`)).status).toBe(204);

    const after = await rowsPerTable(tenant.id);
    const left = Object.entries(after).filter(([table, n]) => n > 0 && !OUTLIVES_THE_TENANT.has(table));
    expect(left).toEqual([]);
    expect(after.audit_events).toBeGreaterThan(0); // the purge's own event
    const bystanderAfter = await rowsPerTable(bystander.id);
    // The bystander's counts are unchanged, except its audit trail, which only grows.
    expect({ ...bystanderAfter, audit_events: 0 }).toEqual({ ...bystanderBefore, audit_events: 0 });
  });
});
