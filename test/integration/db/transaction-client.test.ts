import pg from "pg";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresDatabase, type PgPoolLike } from "../../../src/db/connect-postgres.js";
import { queryRows, type Database } from "../../../src/db/database.js";
import { RequestScopedPool } from "../../../src/db/request-scoped-pool.js";
import { withRequestScope } from "../../../src/core/request-scope.js";
import { authenticateTenantKey } from "../../../src/tenancy/authenticate.js";
import type { TenantContext } from "../../../src/core/tenant-context.js";
import { TestFence, type TestTenant } from "../../support/harness.js";

/**
 * Issue 14, row 15: every statement of a withTenant transaction must run on the transaction's one
 * connection, whatever the pool object is called. drizzle alone takes a connection per transaction
 * only for a class whose name contains "Pool"; a minified Worker build (or any wrapper) would run
 * BEGIN, the tenant setting and each query wherever the pool sent them. Here the pool is hidden
 * behind classes without that name, and concurrent transactions must still each see only their
 * own tenant setting, role and rows (RLS).
 */
const databaseUrl = process.env.DATABASE_URL;

interface Seen {
  pid: number;
  tenant: string;
  role: string;
  visibleTenants: string[];
}

describe.skipIf(!databaseUrl)("transactions on one explicit client, whatever the pool's name", () => {
  let fence: TestFence;
  const tenants: TestTenant[] = [];
  const contexts: TenantContext[] = [];

  beforeAll(async () => {
    fence = await TestFence.start({ name: "postgres", databaseUrl }, { env: { FENCE_JOB_WORKERS: "0" } });
    for (let i = 0; i < 4; i++) {
      const tenant = await fence.createTenant(`explicit-client-${i}`);
      await fence.upload(tenant, { title: `Doc ${i}`, text: `Tenant ${i} keeps its own note number ${i}.` });
      tenants.push(tenant);
      contexts.push(await authenticateTenantKey(fence.fence.db, tenant.key, `req-${i}`));
    }
  });
  afterAll(() => fence?.close());

  /** Runs the tenants' transactions at once, interleaving their statements, and reports what each statement saw. */
  async function interleaved(db: Database): Promise<Seen[][]> {
    return Promise.all(
      contexts.map((ctx) =>
        db.withTenant(ctx, async (scope) => {
          const seen: Seen[] = [];
          for (let step = 0; step < 4; step++) {
            const [row] = await queryRows<{ pid: number; tenant: string; role: string; visible: string[] | null }>(
              scope.tx,
              sql`SELECT pg_backend_pid() AS pid, current_setting('app.tenant_id', true) AS tenant, current_user AS role,
                (SELECT array_agg(DISTINCT tenant_id::text) FROM documents) AS visible`,
            );
            seen.push({ pid: row!.pid, tenant: row!.tenant, role: row!.role, visibleTenants: row!.visible ?? [] });
            await new Promise((resolve) => setTimeout(resolve, 5)); // let the others' statements in between
          }
          return seen;
        }),
      ),
    );
  }

  function expectEachOnItsOwnConnection(results: Seen[][]): void {
    results.forEach((seen, i) => {
      const tenantId = contexts[i]!.tenantId;
      expect(new Set(seen.map((s) => s.pid)).size).toBe(1);
      for (const s of seen) expect(s).toEqual({ pid: seen[0]!.pid, tenant: tenantId, role: "fence_app", visibleTenants: [tenantId] });
    });
    expect(new Set(results.map((seen) => seen[0]!.pid)).size).toBe(results.length);
  }

  it("keeps each transaction on one connection behind an anonymous pool wrapper", async () => {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 8 });
    // What a minifier without keep_names could make of a pool class: no "Pool" in its name.
    const Anonymous = [class {
      query(...args: unknown[]) {
        return (pool.query as (...a: unknown[]) => unknown).apply(pool, args);
      }
      connect() {
        return pool.connect();
      }
    }][0]!;
    expect(Anonymous.name).not.toContain("Pool");
    const db = postgresDatabase(new Anonymous() as unknown as PgPoolLike, () => pool.end());
    try {
      expectEachOnItsOwnConnection(await interleaved(db));
    } finally {
      await db.close();
    }
  });

  it("keeps each transaction on one connection with the Worker's per-request pool under another name", async () => {
    class Renamed extends RequestScopedPool {}
    Object.defineProperty(Renamed, "name", { value: "e" });
    const db = postgresDatabase(new Renamed(databaseUrl!, 8), async () => undefined);
    const scope = withRequestScope(() => interleaved(db));
    try {
      expectEachOnItsOwnConnection(await scope.result);
    } finally {
      await scope.settle();
    }
  });
});
