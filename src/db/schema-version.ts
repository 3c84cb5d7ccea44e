import { sql } from "drizzle-orm";
import journal from "../../drizzle/meta/_journal.json" with { type: "json" };
import { queryRows, type Database } from "./database.js";

/**
 * The schema version this build expects: the newest migration in drizzle/'s journal (the same
 * `when` that the migrator records as `created_at`). Read from the journal bundled into the code,
 * not from the migrations folder on disk, so a runtime without a file system (Workers) can check
 * that the database was migrated before it serves.
 */
export const EXPECTED_SCHEMA_VERSION = Math.max(...journal.entries.map((entry) => entry.when));

const LAST_APPLIED = sql`SELECT max(created_at)::text AS last FROM drizzle.__drizzle_migrations`;

/** The newest applied migration's timestamp, or 0 when the database was never migrated. */
export async function appliedSchemaVersion(db: Database): Promise<number> {
  return db.asOwner(async (tx) => {
    // to_regclass: an unmigrated database has no bookkeeping table, which is "version 0", not an error.
    const [exists] = await queryRows<{ table: string | null }>(tx, sql`SELECT to_regclass('drizzle.__drizzle_migrations')::text AS table`);
    if (!exists?.table) return 0;
    const [row] = await queryRows<{ last: string | null }>(tx, LAST_APPLIED);
    return Number(row?.last ?? 0);
  });
}

/** True when every migration this build knows is recorded as applied (used by /readyz). */
export async function migrationsAreCurrent(db: Database): Promise<boolean> {
  return (await appliedSchemaVersion(db)) >= EXPECTED_SCHEMA_VERSION;
}
