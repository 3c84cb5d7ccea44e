import { sql, type SQL } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase } from "../../../src/db/connect.js";
import { queryRows, type Database, type Tx } from "../../../src/db/database.js";
import { authenticateTenantKey } from "../../../src/tenancy/authenticate.js";
import { inRolledBackTransaction } from "../../support/rolled-back.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { postgresErrorOf } from "../../support/isolation-helpers.js";

/**
 * Invariant I2: the database itself enforces isolation. Read from pg_catalog and proved by running
 * SQL as `fence_app` directly (the role tenant transactions use), bypassing all application code.
 */
const INSUFFICIENT_PRIVILEGE = "42501"; // also the SQLSTATE of a WITH CHECK violation


/**
 * A transaction as fence_app, optionally with a tenant set, exactly as SQL would see it. On Citus the
 * settings are SET LOCAL and propagated, so that they reach the workers where the shards' policies
 * are checked (db/citus.ts): set_config alone would leave every distributed query at 0 rows.
 */
function asFenceApp<T>(db: Database, tenantId: string | undefined, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inRolledBackTransaction(db, async (tx) => {
    if (db.distribution === "citus") await tx.execute(sql`SET LOCAL citus.propagate_set_commands = 'local'`);
    await tx.execute(sql`SET LOCAL ROLE fence_app`);
    if (tenantId) await tx.execute(sql.raw(`SET LOCAL app.tenant_id = '${tenantId}'`));
    return fn(tx);
  });
}

async function count(tx: Tx, query: SQL): Promise<number> {
  const [row] = await queryRows<{ n: number }>(tx, query);
  return Number(row!.n);
}

describe.each(backends)("I2 storage on $name", (backend) => {
  let fence: TestFence;
  let db: Database;
  let a: TestTenant;
  let b: TestTenant;
  let aDocId: string;

  beforeAll(async () => {
    fence = await TestFence.start(backend);
    db = fence.fence.db;
    a = await fence.createTenant("i2-a");
    b = await fence.createTenant("i2-b");
    aDocId = (await fence.upload(a, { text: "# Alpha\n\nAlpha tenant notes.\n\n# More\n\nMore alpha notes." })).id;
    await fence.upload(b, { text: "Beta tenant notes." });
  });
  afterAll(() => fence?.close());

  it("has row-level security enabled AND forced on every table with a tenant_id column, and on tenants", async () => {
    const tables = await db.asOwner((tx) =>
      queryRows<{ name: string; rls: boolean; forced: boolean }>(
        tx,
        sql`SELECT c.relname AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
              AND (c.relname = 'tenants' OR EXISTS (
                SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped))`,
      ),
    );
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(["tenants", "api_keys", "documents", "chunks"]));
    for (const table of tables) expect(table, table.name).toMatchObject({ rls: true, forced: true });
  });

  it("runs tenant queries as a role that is not superuser, not BYPASSRLS, and owns none of those tables", async () => {
    const [role] = await db.asOwner((tx) =>
      queryRows<{ rolsuper: boolean; rolbypassrls: boolean }>(tx, sql`SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'fence_app'`),
    );
    expect(role).toEqual({ rolsuper: false, rolbypassrls: false });
    const owned = await db.asOwner((tx) =>
      queryRows<{ relname: string }>(
        tx,
        sql`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relname IN ('tenants', 'api_keys', 'documents', 'chunks')
              AND pg_has_role('fence_app', c.relowner, 'MEMBER')`,
      ),
    );
    expect(owned).toEqual([]);
  });

  it("sees no rows as fence_app in a transaction that set no tenant, while the data exists", async () => {
    const existing = await db.asOwner((tx) =>
      count(tx, sql`SELECT count(*) AS n FROM chunks WHERE tenant_id IN (${a.id}, ${b.id})`),
    );
    expect(existing).toBeGreaterThanOrEqual(3);
    const seen = await asFenceApp(db, undefined, async (tx) => ({
      chunks: await count(tx, sql`SELECT count(*) AS n FROM chunks`),
      documents: await count(tx, sql`SELECT count(*) AS n FROM documents`),
      tenants: await count(tx, sql`SELECT count(*) AS n FROM tenants`),
    }));
    expect(seen).toEqual({ chunks: 0, documents: 0, tenants: 0 });
  });

  it("sees exactly its own rows as fence_app with app.tenant_id set", async () => {
    const [expected] = await db.asOwner((tx) =>
      queryRows<{ chunks: number; documents: number }>(
        tx,
        sql`SELECT (SELECT count(*)::int FROM chunks WHERE tenant_id = ${a.id}) AS chunks,
                   (SELECT count(*)::int FROM documents WHERE tenant_id = ${a.id}) AS documents`,
      ),
    );
    const seen = await asFenceApp(db, a.id, async (tx) => ({
      chunks: await count(tx, sql`SELECT count(*)::int AS n FROM chunks`),
      documents: await count(tx, sql`SELECT count(*)::int AS n FROM documents`),
      owners: (await queryRows<{ t: string }>(tx, sql`SELECT DISTINCT tenant_id AS t FROM chunks`)).map((r) => r.t),
      tenants: (await queryRows<{ id: string }>(tx, sql`SELECT id FROM tenants`)).map((r) => r.id),
    }));
    expect(seen).toEqual({ chunks: expected!.chunks, documents: expected!.documents, owners: [a.id], tenants: [a.id] });
    expect(expected!.chunks).toBeGreaterThan(0);
  });

  it("refuses, by WITH CHECK, to write a row for another tenant", async () => {
    const insert = asFenceApp(db, a.id, (tx) =>
      tx.execute(sql`INSERT INTO documents (tenant_id, title, media_type, content_hash, byte_size, chunk_count, embedding_model)
                     VALUES (${b.id}, 'planted', 'text/plain', 'x', 1, 0, 'm')`),
    );
    const error = await postgresErrorOf(insert);
    expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
    expect(error.message).toMatch(/row-level security/);

    // Citus refuses to change a row's distribution column before row-level security is asked.
    const move = asFenceApp(db, a.id, (tx) => tx.execute(sql`UPDATE documents SET tenant_id = ${b.id} WHERE id = ${aDocId}`));
    expect((await postgresErrorOf(move)).message).toMatch(db.distribution === "citus" ? /modifying the partition value/ : /row-level security/);

    // The same insert for its own tenant is allowed: the refusal is about the tenant id.
    const own = await asFenceApp(db, a.id, (tx) =>
      queryRows<{ id: string }>(
        tx,
        sql`INSERT INTO documents (tenant_id, title, media_type, content_hash, byte_size, chunk_count, embedding_model)
            VALUES (${a.id}, 'own', 'text/plain', 'x', 1, 0, 'm') RETURNING id`,
      ),
    );
    expect(own).toHaveLength(1);
  });

  it("sees and writes only its own tenant's api_keys, never deletes one, and changes only what revoking and rotating change", async () => {
    expect(await asFenceApp(db, undefined, (tx) => count(tx, sql`SELECT count(*) AS n FROM api_keys`))).toBe(0);
    const seen = await asFenceApp(db, a.id, (tx) => queryRows<{ tenant_id: string }>(tx, sql`SELECT tenant_id FROM api_keys`));
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen.map((row) => row.tenant_id))).toEqual(new Set([a.id]));
    // B's keys: invisible, so not revocable either.
    const revokedOfB = await asFenceApp(db, a.id, (tx) => queryRows(tx, sql`UPDATE api_keys SET revoked_at = now() WHERE tenant_id = ${b.id} RETURNING id`));
    expect(revokedOfB).toHaveLength(0);
    // Citus refuses a change of the distribution column before privileges are checked.
    const FEATURE_NOT_SUPPORTED = "0A000";
    for (const [statement, codes] of [
      [sql`DELETE FROM api_keys WHERE tenant_id = ${a.id}`, [INSUFFICIENT_PRIVILEGE]],
      [sql`UPDATE api_keys SET scopes = '{owner}' WHERE tenant_id = ${a.id}`, [INSUFFICIENT_PRIVILEGE]],
      [sql`UPDATE api_keys SET expires_at = NULL WHERE tenant_id = ${a.id}`, [INSUFFICIENT_PRIVILEGE]],
      [sql`UPDATE api_keys SET tenant_id = ${b.id} WHERE tenant_id = ${a.id}`, db.distribution === "citus" ? [FEATURE_NOT_SUPPORTED] : [INSUFFICIENT_PRIVILEGE]],
      [sql`INSERT INTO api_keys (tenant_id, name, prefix, key_hash) VALUES (${b.id}, 'planted', 'fence_prod_x', 'not-a-hash')`, [INSUFFICIENT_PRIVILEGE]],
    ] as const) {
      const error = await postgresErrorOf(asFenceApp(db, a.id, (tx) => tx.execute(statement)));
      expect(codes, `${error.code} ${error.message}`).toContain(error.code);
    }
  });

  it("keeps the audit trail append-only for both roles, and each tenant's events its own", async () => {
    // Two events of A and one of B, written as each tenant would write them.
    for (const [tenant, action] of [[a.id, "test.one"], [a.id, "test.two"], [b.id, "test.three"]] as const) {
      await db.withTenant(await authenticateTenantKey(db, tenant === a.id ? a.key : b.key, "i2-audit"), (scope) =>
        scope.tx.execute(sql`INSERT INTO audit_events (tenant_id, actor, action) VALUES (${tenant}, 'key', ${action})`),
      );
    }
    const seenByA = await asFenceApp(db, a.id, (tx) => queryRows<{ tenant_id: string }>(tx, sql`SELECT tenant_id FROM audit_events`));
    expect(seenByA.length).toBeGreaterThanOrEqual(2);
    expect(new Set(seenByA.map((row) => row.tenant_id))).toEqual(new Set([a.id]));
    expect(await asFenceApp(db, undefined, (tx) => count(tx, sql`SELECT count(*) AS n FROM audit_events`))).toBe(0);
    const planted = await postgresErrorOf(asFenceApp(db, a.id, (tx) => tx.execute(sql`INSERT INTO audit_events (tenant_id, actor, action) VALUES (${b.id}, 'key', 'planted')`)));
    expect(planted.code).toBe(INSUFFICIENT_PRIVILEGE);
    const asPlatform = <T,>(fn: (tx: Tx) => Promise<T>) =>
      inRolledBackTransaction(db, async (tx) => {
        if (db.distribution === "citus") await tx.execute(sql`SET LOCAL citus.propagate_set_commands = 'local'`);
        await tx.execute(sql`SET LOCAL ROLE fence_platform`);
        return fn(tx);
      });
    for (const statement of [sql`UPDATE audit_events SET action = 'rewritten'`, sql`DELETE FROM audit_events`]) {
      for (const run of [(fn: (tx: Tx) => Promise<unknown>) => asFenceApp(db, a.id, fn), asPlatform]) {
        const error = await postgresErrorOf(run((tx) => tx.execute(statement)));
        expect(error.code).toBe(INSUFFICIENT_PRIVILEGE);
        expect(error.message).toMatch(/permission denied/);
      }
    }
  });

  it("can update only its own tenants.data_version", async () => {
    const rename = await postgresErrorOf(
      asFenceApp(db, a.id, (tx) => tx.execute(sql`UPDATE tenants SET name = 'renamed' WHERE id = ${a.id}`)),
    );
    expect(rename.code).toBe(INSUFFICIENT_PRIVILEGE);
    expect(rename.message).toMatch(/permission denied/);

    const bumped = await asFenceApp(db, a.id, async (tx) => ({
      own: await queryRows(tx, sql`UPDATE tenants SET data_version = data_version + 1 WHERE id = ${a.id} RETURNING id`),
      other: await queryRows(tx, sql`UPDATE tenants SET data_version = data_version + 1 WHERE id = ${b.id} RETURNING id`),
    }));
    expect(bumped.own).toHaveLength(1);
    expect(bumped.other).toHaveLength(0);
  });

  it("keeps app.tenant_id and the role transaction-local: the next transaction on the connection has neither", async () => {
    // On Postgres, a one-connection pool guarantees the next transaction reuses the connection.
    const single = backend.databaseUrl
      ? await connectDatabase({ databaseUrl: backend.databaseUrl, dataDir: "memory://", poolSize: 1 })
      : db;
    try {
      const ctx = await authenticateTenantKey(single, a.key, "i2-local-setting");
      type Probe = { tenant: string | null; role: string; pid: number };
      const probe = sql`SELECT current_setting('app.tenant_id', true) AS tenant, current_user AS role, pg_backend_pid() AS pid`;
      const inside = await single.withTenant(ctx, async (scope) => (await queryRows<Probe>(scope.tx, probe))[0]!);
      const after = (await single.asOwner((tx) => queryRows<Probe>(tx, probe)))[0]!;

      expect(inside).toMatchObject({ tenant: a.id, role: "fence_app" });
      expect(after.pid).toBe(inside.pid);
      expect(after.tenant ?? "").toBe("");
      expect(after.role).not.toBe("fence_app");
      // And as fence_app on that connection, still nothing is visible.
      const visible = await asFenceApp(single, undefined, (tx) => count(tx, sql`SELECT count(*) AS n FROM documents`));
      expect(visible).toBe(0);
    } finally {
      if (single !== db) await single.close();
    }
  });
});
