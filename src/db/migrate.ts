import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { distributeOnCitus } from "./citus.js";
import { queryRows, type Database } from "./database.js";

const LAST_APPLIED = sql`SELECT max(created_at)::text AS last FROM drizzle.__drizzle_migrations`;
const MIGRATIONS_FOLDER = fileURLToPath(new URL("../../drizzle", import.meta.url));

/**
 * Applies the SQL migrations in drizzle/ that the database has not seen, in one transaction.
 * An advisory lock serialises instances that start together against one Postgres (drizzle's own
 * migrator does not lock, and two instances would both apply the same migration).
 * Bookkeeping uses drizzle's table, so drizzle-kit tooling reads the same history.
 * On a Citus coordinator the migrated tables are then distributed by tenant (db/citus.ts).
 */
export async function runMigrations(db: Database, folder = MIGRATIONS_FOLDER): Promise<number> {
  const applied = await applyMigrations(db, folder);
  if (db.distribution === "citus") await distributeOnCitus(db);
  return applied;
}

async function applyMigrations(db: Database, folder: string): Promise<number> {
  const migrations = readMigrationFiles({ migrationsFolder: folder });
  return db.asOwner(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext('fence:migrations'))`);
    await tx.execute(sql`CREATE EXTENSION IF NOT EXISTS vector`);
    await tx.execute(sql`CREATE SCHEMA IF NOT EXISTS drizzle`);
    await tx.execute(sql`CREATE TABLE IF NOT EXISTS drizzle.__drizzle_migrations (
      id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)`);
    const [row] = await queryRows<{ last: string | null }>(tx, LAST_APPLIED);
    const last = Number(row?.last ?? 0);
    let applied = 0;
    for (const migration of migrations) {
      if (migration.folderMillis <= last) continue;
      for (const statement of migration.sql) {
        if (statement.trim()) await tx.execute(sql.raw(statement));
      }
      await tx.execute(sql`INSERT INTO drizzle.__drizzle_migrations (hash, created_at)
        VALUES (${migration.hash}, ${migration.folderMillis})`);
      applied++;
    }
    return applied;
  });
}

/** True when every migration in drizzle/ is recorded as applied (the check lives with the bundled journal). */
export { migrationsAreCurrent } from "./schema-version.js";
