import { sql } from "drizzle-orm";
import type { Tx } from "./database.js";

/** The channel key, tenant and plan changes are announced on (drizzle/0011). */
export const KEY_CHANGES_CHANNEL = "fence_key_changes";

/**
 * `tenant:<id>`: a key, the plan or the cache secret of the tenant changed, it was suspended or
 * resumed (the trigger watches suspended_at since drizzle/0018), or it was deleted;
 * `plan:<name>`: a plan's numbers.
 */
export type KeyChangeSubject = `tenant:${string}` | `plan:${string}`;

/**
 * Announces a change that makes verified keys held in memory wrong (tenancy/verified-key-cache.ts),
 * in the transaction that makes it, so every instance hears of it on commit and never before.
 *
 * On one Postgres (or PGlite) the triggers of drizzle/0011 announce the same change, whoever makes
 * it, including SQL typed by hand; Postgres delivers a payload once per transaction, however often
 * it was sent. On Citus those triggers cannot exist (they would fire on the workers, whose NOTIFY no
 * instance hears: db/citus.ts), and this is the announcement: every change Fence makes goes through
 * here, and a change made by hand there must be followed by `NOTIFY fence_key_changes, 'tenant:<id>'`.
 */
export async function announceKeyChange(tx: Tx, subject: KeyChangeSubject): Promise<void> {
  await tx.execute(sql`SELECT pg_notify(${KEY_CHANGES_CHANNEL}, ${subject})`);
}
