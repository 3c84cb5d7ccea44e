import { randomUUID } from "node:crypto";
import { and, eq, sql } from "drizzle-orm";
import type { TenantContext } from "../core/tenant-context.js";
import { queryRows, type Database } from "../db/database.js";
import type { PayloadKey } from "../db/payload-files.js";
import { jobs } from "../db/schema.js";

/**
 * A queued upload's bytes, from enqueue to the job's end, wherever the backend keeps them: in the
 * jobs row (Postgres: every instance can run the job), or in files beside the embedded database
 * (`Database.payloadFiles`: PGlite, whose one thread a 10 MB value in a statement held for up to a
 * second). Either way the row carries `payload_bytes`, which the queue caps sum, and the row is
 * the record: a payload is kept while `payload_bytes` is set, and dropped with it.
 */

/** Column values that drop a job's payload (a file of it is removed after the commit: `releasePayloads`). */
export const DROPPED_PAYLOAD = { payload: null, payloadBytes: null } as const;

/** Payloads written for new jobs, before the transaction that inserts their rows. */
export interface StagedPayloads {
  /** Each new job's id (chosen here, so a file can be named before its row exists). */
  readonly ids: readonly string[];
  /** The row's payload columns for job `index`. */
  columns(index: number): { payload: ReturnType<typeof payloadValue> | null; payloadBytes: number | null };
  /** After the transaction: a committed payload is now the row's; otherwise its file is removed. */
  settle(committed: boolean): Promise<void>;
}

/** Keys whose files are written but whose rows may not be committed yet: the sweep leaves them. */
const staging = new Set<string>();
/** One set per sweep running: every key staged since it began, committed or not (it may miss its row). */
const sweeps = new Set<Set<string>>();
const stagingKey = (key: PayloadKey) => `${key.tenantId}/${key.jobId}`;

/**
 * Writes the payloads of a batch about to be enqueued. With files, they are written here, before
 * the enqueue transaction, so the database's one seat is never held during disk writes.
 */
export async function stagePayloads(db: Database, tenantId: string, payloads: readonly (Uint8Array | undefined)[]): Promise<StagedPayloads> {
  const ids = payloads.map(() => randomUUID());
  const files = db.payloadFiles;
  const keys = files ? ids.flatMap((jobId, index) => (payloads[index] ? [{ tenantId, jobId }] : [])) : [];
  for (const key of keys) {
    staging.add(stagingKey(key));
    for (const protectedKeys of sweeps) protectedKeys.add(stagingKey(key));
  }
  try {
    if (files) await Promise.all(ids.map((jobId, index) => payloads[index] && files.write({ tenantId, jobId }, payloads[index])));
  } catch (error) {
    await settle(false);
    throw error;
  }
  async function settle(committed: boolean): Promise<void> {
    try {
      if (!committed && files) await files.remove(keys);
    } finally {
      for (const key of keys) staging.delete(stagingKey(key));
    }
  }
  return {
    ids,
    columns: (index) => {
      const bytes = payloads[index];
      if (!bytes) return { payload: null, payloadBytes: null };
      return { payload: files ? null : payloadValue(bytes), payloadBytes: bytes.byteLength };
    },
    settle,
  };
}

/**
 * The payload of the context's own job, or null when none is kept. The row decides, read in the
 * tenant's transaction (RLS applies); a file is read after that transaction ends, so the embedded
 * database's one seat is not held while the file is read.
 */
export async function loadPayload(db: Database, ctx: TenantContext, jobId: string): Promise<Uint8Array | null> {
  const files = db.payloadFiles;
  const kept = await db.withTenant(ctx, async (scope) => {
    const mine = and(scope.owns(jobs.tenantId), eq(jobs.id, jobId));
    const [row] = await scope.tx
      .select({ bytes: jobs.payloadBytes, inRow: files ? sql<null>`NULL` : sql<number | null>`octet_length(${jobs.payload})` })
      .from(jobs)
      .where(mine);
    if (!row || row.bytes === null) return null;
    if (files) return "in a file" as const;
    if (row.inRow === null) return null;
    // In slices, each decoded into its place as it arrives: one 10 MB reply held the event loop
    // ~150 ms (decoded as text by the driver, then from base64); a slice holds it a few ms.
    const payload = Buffer.allocUnsafe(row.inRow);
    for (let offset = 0; offset < payload.length; offset += PAYLOAD_SLICE_BYTES) {
      const [slice] = await scope.tx
        .select({ base64: sql<string | null>`encode(substring(${jobs.payload} FROM ${offset + 1} FOR ${PAYLOAD_SLICE_BYTES}), 'base64')` })
        .from(jobs)
        .where(mine);
      if (!slice || slice.base64 === null) return null; // the job or its payload is gone meanwhile
      payload.write(slice.base64, offset, "base64");
    }
    return new Uint8Array(payload.buffer, payload.byteOffset, payload.length);
  });
  if (kept !== "in a file") return kept;
  return files!.read({ tenantId: ctx.tenantId, jobId });
}

/** A slice of a payload read back from the row: ~1.4 MB of base64 in one reply. */
const PAYLOAD_SLICE_BYTES = 1024 * 1024;

/** After a transaction that dropped payloads (DROPPED_PAYLOAD) committed: their files go too. */
export async function releasePayloads(db: Database, keys: readonly PayloadKey[]): Promise<void> {
  if (db.payloadFiles && keys.length > 0) await db.payloadFiles.remove(keys);
}

/**
 * Removes payload files no job keeps any more: those of a crash between a file's write and its
 * row's commit, or between a job's end and the file's removal. Returns how many it removed.
 */
export async function sweepPayloadFiles(db: Database): Promise<number> {
  const files = db.payloadFiles;
  if (!files) return 0;
  const protectedKeys = new Set(staging);
  sweeps.add(protectedKeys);
  try {
    const present = await files.list();
    if (present.length === 0) return 0;
    // Only the files found are looked up, not every job that keeps a payload.
    const kept = await db.asPlatformAdmin("job-payload-sweep", (tx) =>
      queryRows<PayloadKey>(
        tx,
        sql`SELECT tenant_id AS "tenantId", id AS "jobId" FROM jobs
            WHERE payload_bytes IS NOT NULL
              AND (tenant_id, id) IN (VALUES ${sql.join(present.map((key) => sql`(${key.tenantId}::uuid, ${key.jobId}::uuid)`), sql`, `)})`,
      ),
    );
    for (const key of kept) protectedKeys.add(stagingKey(key));
    const orphans = present.filter((key) => !protectedKeys.has(stagingKey(key)));
    await files.remove(orphans);
    return orphans.length;
  } finally {
    sweeps.delete(protectedKeys);
  }
}

/**
 * An upload's bytes as a bytea parameter, for the row (Postgres only: PGlite keeps files). A
 * Buffer is sent in the protocol's binary format, as it is: no base64 (a third larger, encoded on
 * the event loop's thread) and nothing for the server to decode.
 */
function payloadValue(bytes: Uint8Array) {
  return sql`${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)}::bytea`;
}
