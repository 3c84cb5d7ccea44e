import { is, sql } from "drizzle-orm";
import { getTableConfig, pgPolicy, PgRole, PgTable, type PgPolicy, type PgPolicyToOption } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase } from "../../../src/db/connect.js";
import { queryRows, type Database, type Tx } from "../../../src/db/database.js";
import { runMigrations } from "../../../src/db/migrate.js";
import * as schema from "../../../src/db/schema.js";
import { platformAll, RowLevelSecurity, tenantIsolation } from "../../../src/db/schema/rls.js";
import { inRolledBackTransaction } from "../../support/rolled-back.js";
import { backends } from "../../support/harness.js";
import { isolatedBackend } from "../../support/scratch-database.js";

/**
 * Each table's row-level security is declared next to it in src/db/schema/<domain>.ts, while the
 * database gets it from the hand-written migrations in drizzle/. This suite proves the two agree on
 * a freshly migrated database: every table's RLS enabled/forced flags, and every policy's name,
 * PERMISSIVE/RESTRICTIVE, command, roles, USING and WITH CHECK. Expressions are compared as
 * Postgres prints them: each declared policy is created under a shadow name on its table (in a
 * transaction that is rolled back) and read back from pg_policies, so spelling does not matter
 * and meaning does.
 */

const exported = Object.values(schema) as unknown[];
const schemaTables = exported.filter((value): value is PgTable => is(value, PgTable));
const declarations = exported.filter((value): value is RowLevelSecurity => value instanceof RowLevelSecurity);

interface Catalogue {
  /** Keyed `table <name>` and `policy <table>.<name>`, so a difference names what drifted. */
  [key: string]: unknown;
}

const SHADOW = "declared:";


const tableName = (table: PgTable) => getTableConfig(table).name;

function roleNames(to: PgPolicyToOption | undefined): string[] {
  if (to === undefined) return ["public"];
  if (Array.isArray(to)) return to.flatMap(roleNames);
  if (is(to, PgRole)) return [to.name];
  return [to as string];
}

const KEYWORD_ROLES = new Set(["public", "current_role", "current_user", "session_user"]);
const roleSql = (role: string) => (KEYWORD_ROLES.has(role) ? sql.raw(role) : sql.identifier(role));

/** RLS flags of every table in `public`, and every policy there, as pg_catalog reports them. */
async function readCatalogue(tx: Tx, policyPrefix = ""): Promise<Catalogue> {
  const catalogue: Catalogue = {};
  if (!policyPrefix) {
    const tables = await queryRows<{ name: string; rls: boolean; forced: boolean }>(
      tx,
      sql`SELECT c.relname AS name, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')`,
    );
    for (const t of tables) catalogue[`table ${t.name}`] = { rls: t.rls, forced: t.forced };
  }
  const policies = await queryRows<{ table: string; name: string; permissive: string; roles: string; command: string; using: string | null; with_check: string | null }>(
    tx,
    sql`SELECT tablename AS table, policyname AS name, permissive, cmd AS command, qual AS using, with_check,
               (SELECT string_agg(r::text, ',' ORDER BY r::text) FROM unnest(roles) AS r) AS roles
        FROM pg_policies WHERE schemaname = 'public'`,
  );
  for (const p of policies) {
    if (policyPrefix && !p.name.startsWith(policyPrefix)) continue;
    if (!policyPrefix && p.name.startsWith(SHADOW)) continue;
    const { table, name, ...rest } = p;
    catalogue[`policy ${table}.${name.slice(policyPrefix.length)}`] = rest;
  }
  return catalogue;
}

/** What the declarations say, normalised by the database itself (shadow policies, rolled back). */
function declaredCatalogue(db: Database, declared: readonly RowLevelSecurity[]): Promise<Catalogue> {
  return inRolledBackTransaction(db, async (tx) => {
    const catalogue: Catalogue = {};
    for (const { table, forced, policies } of declared) {
      catalogue[`table ${tableName(table)}`] = { rls: forced, forced };
      for (const policy of policies) {
        const roles = sql.join(roleNames(policy.to).map(roleSql), sql`, `);
        await tx.execute(sql`CREATE POLICY ${sql.identifier(SHADOW + policy.name)} ON ${table}
          AS ${sql.raw((policy.as ?? "permissive").toUpperCase())} FOR ${sql.raw((policy.for ?? "all").toUpperCase())} TO ${roles}
          ${policy.using ? sql`USING (${policy.using})` : sql``}
          ${policy.withCheck ? sql`WITH CHECK (${policy.withCheck})` : sql``}`);
      }
    }
    return { ...catalogue, ...(await readCatalogue(tx, SHADOW)) };
  });
}

/** The keys on which the two catalogues differ. */
function drift(declared: Catalogue, actual: Catalogue): string[] {
  const keys = new Set([...Object.keys(declared), ...Object.keys(actual)]);
  return [...keys].filter((key) => JSON.stringify(declared[key]) !== JSON.stringify(actual[key])).sort();
}

function replacePolicies(table: PgTable, edit: (policies: readonly PgPolicy[]) => PgPolicy[]): RowLevelSecurity[] {
  return declarations.map((d) => (d.table === table ? RowLevelSecurity.forced(table, edit(d.policies)) : d));
}

describe("row-level security declarations", () => {
  it("declare every table of the schema exactly once", () => {
    const declaredNames = declarations.map((d) => tableName(d.table)).sort();
    expect(declaredNames).toEqual(schemaTables.map(tableName).sort());
    expect(new Set(declaredNames).size).toBe(declaredNames.length);
    for (const d of declarations) expect(schemaTables, tableName(d.table)).toContain(d.table);
  });

  it("force RLS on every table with a tenant_id column, and on tenants", () => {
    for (const table of schemaTables) {
      const { name, columns } = getTableConfig(table);
      if (name !== "tenants" && !columns.some((c) => c.name === "tenant_id")) continue;
      expect(declarations.find((d) => d.table === table)?.forced, name).toBe(true);
    }
  });
});

describe.each(backends)("row-level security on $name: the schema files and the migrated database agree", (baseBackend) => {
  let db: Database;
  let dropDatabase: () => Promise<void> = async () => undefined;
  let declared: Catalogue;

  beforeAll(async () => {
    // On Postgres, a database of its own: the shadow policies lock the tables they are created on.
    const isolated = await isolatedBackend(baseBackend, "fence_rls");
    dropDatabase = isolated.drop;
    db = await connectDatabase({ databaseUrl: isolated.backend.databaseUrl, dataDir: "memory://", poolSize: 1 });
    await runMigrations(db);
    // On Citus the policies are installed in their per-row form (db/citus.ts).
    declared = await declaredCatalogue(db, db.distribution === "citus" ? declarations.map((d) => d.onCitus()) : declarations);
  });
  afterAll(async () => {
    await db?.close();
    await dropDatabase();
  });

  it("has exactly the declared RLS flags and policies on every table", async () => {
    const actual = await db.asOwner((tx) => readCatalogue(tx));
    expect(drift(declared, actual)).toEqual([]);
    expect(actual).toEqual(declared);
    // Not vacuous: 19 tables, 16 under forced RLS, 14 tenant policies and 16 platform ones.
    expect(Object.keys(actual).filter((k) => k.startsWith("table "))).toHaveLength(19);
    expect(Object.keys(actual).filter((k) => k.startsWith("policy "))).toHaveLength(30);
    expect(actual["policy chunks.tenant_isolation"]).toMatchObject({
      permissive: "PERMISSIVE",
      command: "ALL",
      roles: "fence_app",
      using: expect.stringContaining("current_setting('app.tenant_id'::text, true)"),
    });
  });

  it("notices a policy or flag changed, dropped or added in the database", async () => {
    const plants: [string, string[]][] = [
      ["ALTER POLICY tenant_isolation ON chunks USING (true)", ["policy chunks.tenant_isolation"]],
      ["ALTER POLICY tenant_self ON tenants WITH CHECK (id IS NOT NULL)", ["policy tenants.tenant_self"]],
      ["ALTER POLICY platform_all ON documents TO fence_app", ["policy documents.platform_all"]],
      ["DROP POLICY platform_all ON runs", ["policy runs.platform_all"]],
      ["CREATE POLICY peek ON api_keys FOR SELECT TO fence_app USING (true)", ["policy api_keys.peek"]],
      ["ALTER POLICY tenant_isolation ON audit_events USING (true)", ["policy audit_events.tenant_isolation"]],
      ["ALTER TABLE jobs NO FORCE ROW LEVEL SECURITY", ["table jobs"]],
      ["ALTER TABLE plans ENABLE ROW LEVEL SECURITY", ["table plans"]],
    ];
    for (const [statement, expected] of plants) {
      const actual = await inRolledBackTransaction(db, async (tx) => {
        await tx.execute(sql.raw(statement));
        return readCatalogue(tx);
      });
      expect(drift(declared, actual), statement).toEqual(expected);
    }
  });

  // The comparison itself, whatever the backend; its respellings are subqueries, which Citus refuses in a policy.
  it.skipIf(baseBackend.name === "citus")("notices a declaration changed, dropped or added, and not one only spelled differently", async () => {
    const actual = await db.asOwner((tx) => readCatalogue(tx));
    const { chunks, runs, jobs, jobTenants } = schema;
    const looser = pgPolicy("tenant_isolation", { ...tenantIsolation(), using: sql`tenant_id IS NOT NULL` });
    const respelled = pgPolicy("tenant_isolation", {
      to: "fence_app",
      using: sql.raw("tenant_id=(select NULLIF(current_setting('app.tenant_id',true),'')::uuid)"),
      withCheck: sql.raw("(tenant_id = ( SELECT (nullif(current_setting('app.tenant_id', true), ''))::uuid))"),
    });
    const edits: [string, RowLevelSecurity[], string[]][] = [
      ["looser USING", replacePolicies(chunks, (ps) => ps.map((p) => (p.name === "tenant_isolation" ? looser : p))), ["policy chunks.tenant_isolation"]],
      ["dropped policy", replacePolicies(runs, (ps) => ps.filter((p) => p.name !== "platform_all")), ["policy runs.platform_all"]],
      ["added policy", replacePolicies(jobTenants, (ps) => [...ps, tenantIsolation()]), ["policy job_tenants.tenant_isolation"]],
      ["RLS off", declarations.map((d) => (d.table === jobs ? RowLevelSecurity.off(jobs) : d)), ["policy jobs.platform_all", "policy jobs.tenant_isolation", "table jobs"]],
      ["respelled only", replacePolicies(chunks, () => [respelled, platformAll()]), []],
    ];
    for (const [what, edited, expected] of edits) {
      expect(drift(await declaredCatalogue(db, edited), actual), what).toEqual(expected);
    }
  });
});
