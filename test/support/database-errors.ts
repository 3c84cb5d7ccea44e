import { sql } from "drizzle-orm";
import type { Database } from "../../src/db/database.js";

/**
 * Real errors of the backend under test, from statements whose parameters hold `canary` (and a
 * large `document`): what the driver and drizzle really throw, with the values really in them.
 * Each statement runs as the connecting owner in a transaction of its own, on temporary tables.
 */
export async function databaseErrorsHolding(db: Database, canary: string, document: string): Promise<Error[]> {
  const failures = [
    // 23505: Postgres quotes the key in `detail`; drizzle's message lists every parameter.
    async () =>
      db.asOwner(async (tx) => {
        await tx.execute(sql`CREATE TEMP TABLE canary_docs (source_id text PRIMARY KEY, body text) ON COMMIT DROP`);
        await tx.execute(sql`INSERT INTO canary_docs VALUES (${`doc-${canary}`}, ${document})`);
        await tx.execute(sql`INSERT INTO canary_docs VALUES (${`doc-${canary}`}, ${document})`);
      }),
    // 23505 on bytes: drizzle's message writes a byte array as decimal numbers, one per byte.
    async () =>
      db.asOwner(async (tx) => {
        const bytes = new TextEncoder().encode(`${canary} ${document}`.slice(0, 1500));
        await tx.execute(sql`CREATE TEMP TABLE canary_payloads (payload bytea PRIMARY KEY) ON COMMIT DROP`);
        await tx.execute(sql`INSERT INTO canary_payloads VALUES (${bytes})`);
        await tx.execute(sql`INSERT INTO canary_payloads VALUES (${bytes})`);
      }),
    // 22P02: the value is quoted in the message itself.
    async () => db.asOwner((tx) => tx.execute(sql`SELECT ${`${canary} ${document}`.slice(0, 2000)}::integer`)),
    // 22021: a NUL cannot be stored as text; the parameter still travels with the error.
    async () => db.asOwner((tx) => tx.execute(sql`SELECT ${`${document}\u0000${canary}`}::text`)),
  ];
  const errors: Error[] = [];
  for (const fail of failures) {
    const error = await fail().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    if (!error) throw new Error("a statement meant to fail succeeded");
    errors.push(error);
  }
  return errors;
}
