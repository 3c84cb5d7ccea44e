import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UnauthorizedError } from "../../../src/core/errors.js";
import type { TenantContext } from "../../../src/core/tenant-context.js";
import { recordUsage } from "../../../src/metering/ledger.js";
import { readTenantSettings } from "../../../src/plans/tenant-settings.js";
import { countTenantRows } from "../../support/api-contract.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { contextFor } from "../../support/isolation-helpers.js";

/**
 * A tenant deleted while its work runs. A request authenticated a moment before the purge (or on
 * an instance that has not heard of it yet) and a job of the tenant go on writing rows that refer
 * to the tenant's row: they must end in a clear 401, not a 500 for a foreign key. And the purge
 * must not fail because of them: on Postgres it can deadlock with such a write (it locks the
 * tenant's row, then every row the tenant owns; the write holds one of those and waits for the
 * tenant's row), and the flood benchmark's run got a 500 from the DELETE that way.
 */
describe.each(backends)("a tenant deleted while its work runs, on $name", (backend) => {
  let fence: TestFence;

  beforeAll(async () => {
    fence = await TestFence.start(backend);
  });
  afterAll(() => fence?.close());

  async function deletedTenant(): Promise<{ tenant: TestTenant; ctx: TenantContext }> {
    const tenant = await fence.createTenant();
    const ctx = await contextFor(fence, tenant);
    expect((await fence.admin("DELETE", `/tenants/${tenant.id}`)).status).toBe(204);
    return { tenant, ctx };
  }

  it("a write that refers to the deleted tenant's row is refused as unauthorized, not an internal error", async () => {
    const { ctx } = await deletedTenant();
    const usage = fence.fence.db.withTenant(ctx, (scope) =>
      recordUsage(
        scope,
        { eventId: `evt:${randomUUID()}`, feature: "chat", provider: "purge-test", model: "m", inputTokens: 10, outputTokens: 5, status: "charged" },
        1000,
      ),
    );
    await expect(usage).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it("reading the deleted tenant's plan is refused as unauthorized", async () => {
    const { ctx } = await deletedTenant();
    await expect(fence.fence.db.withTenant(ctx, (scope) => readTenantSettings(scope))).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it("queueing a job for the deleted tenant is refused as unauthorized", async () => {
    const { ctx } = await deletedTenant();
    const enqueue = fence.fence.jobs.enqueue(ctx, [{ kind: "purge-test", priority: "bulk", input: {} }], randomUUID());
    await expect(enqueue).rejects.toBeInstanceOf(UnauthorizedError);
  });
});

const postgres = backends.find((b) => b.name === "postgres");

describe.skipIf(!postgres)("a tenant's purge that deadlocks with the tenant's own work, on Postgres", () => {
  let fence: TestFence;
  let client: pg.Client;

  beforeAll(async () => {
    fence = await TestFence.start(postgres!);
    client = new pg.Client({ connectionString: postgres!.databaseUrl });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await fence?.close();
  });

  /**
   * True once another session waits for a lock this test's client holds: the purge's cascade
   * reached the held row. (Asked by blocker, not by query text: pg_stat_activity may still show
   * the transaction's previous statement while the DELETE waits.)
   */
  async function purgeWaitsForALock(): Promise<boolean> {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND pg_backend_pid() = ANY (pg_blocking_pids(pid))`,
    );
    return Number(rows[0]!.n) > 0;
  }

  it("is run again and deletes everything: the DELETE answers 204, never 500", async () => {
    const tenant = await fence.createTenant();
    await fence.upload(tenant, { text: "A document whose row the tenant's own work holds." });

    // The tenant's work: it holds one of the tenant's rows…
    await client.query("BEGIN");
    await client.query("SELECT 1 FROM documents WHERE tenant_id = $1 FOR UPDATE", [tenant.id]);
    // …while the purge deletes the tenant's row and waits, in its cascade, for that one.
    const purge = fence.admin("DELETE", `/tenants/${tenant.id}`);
    const deadline = Date.now() + 10_000;
    while (!(await purgeWaitsForALock())) {
      if (Date.now() > deadline) throw new Error("the purge never waited for the held row");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Then the work checks the tenant's row as a foreign key does (FOR KEY SHARE): a deadlock,
    // which Postgres breaks after deadlock_timeout by aborting one of the two.
    let workAborted = false;
    try {
      await client.query("SELECT 1 FROM tenants WHERE id = $1 FOR KEY SHARE", [tenant.id]);
    } catch (error) {
      expect((error as { code?: string }).code).toBe("40P01");
      workAborted = true;
    }
    await client.query(workAborted ? "ROLLBACK" : "COMMIT");

    expect((await purge).status).toBe(204);
    expect(await countTenantRows(fence, tenant.id)).toEqual({ documents: 0, chunks: 0, apiKeys: 0 });
  });
});
