import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TenantCaches } from "../../../src/cache/tenant-caches.js";
import { queryRows } from "../../../src/db/database.js";
import { TenantAdmin } from "../../../src/tenancy/tenant-admin.js";
import { search } from "../../support/api-contract.js";
import { TestFence, type TestTenant } from "../../support/harness.js";

/**
 * PGlite on a thread of its own (FENCE_PGLITE_THREAD=true, db/pglite-thread.ts) answers as PGlite
 * in-process (the default) does: what crosses the thread is SQL, rows, errors and notifications,
 * and each must arrive intact — json parsed (however deep), SQLSTATE codes kept for the code that
 * reads them, a failed transaction rolled back, a notification delivered before the commit's
 * reply. Both modes run the same tests, so the contract is checked on each side of the switch.
 */
describe.each([
  { mode: "on its own thread", thread: "true" },
  { mode: "in-process", thread: "false" },
])("PGlite $mode", ({ thread }) => {
  let fence: TestFence;
  let tenant: TestTenant;

  beforeAll(async () => {
    fence = await TestFence.start({ name: "pglite", databaseUrl: undefined }, { env: { FENCE_PGLITE_THREAD: thread, FENCE_JOB_WORKERS: "0" } });
    tenant = await fence.createTenant("threaded");
  });
  afterAll(async () => {
    await fence?.close();
  });

  it("stores and finds a document, and lists it, as in-process PGlite does", async () => {
    const doc = await fence.upload(tenant, { title: "Tides", text: "Spring tides follow the full and new moon." });
    expect((await search(fence, tenant.key, "when are spring tides"))[0]?.document_id).toBe(doc.id);
    const listed = (await (await fence.request("GET", "/v1/documents", { key: tenant.key })).json()) as { documents: { id: string }[] };
    expect(listed.documents.map((d) => d.id)).toContain(doc.id);
  });

  it("returns json nested thousands of levels deep (it crosses the thread as text)", async () => {
    let metadata: unknown = "leaf";
    for (let i = 0; i < 3000; i++) metadata = { a: metadata };
    const rows = await fence.fence.db.asOwner((tx) => queryRows<{ doc: unknown }>(tx, sql`SELECT ${JSON.stringify(metadata)}::jsonb AS doc`));
    let depth = 0;
    for (let node = rows[0]!.doc; typeof node === "object" && node !== null; node = (node as { a: unknown }).a) depth++;
    expect(depth).toBe(3000);
  });

  it("keeps the SQLSTATE of an error, and rolls the failed transaction back", async () => {
    const name = `dup-${Date.now()}`;
    const failed = fence.fence.db.asOwner(async (tx) => {
      await tx.execute(sql`CREATE TEMP TABLE IF NOT EXISTS thread_probe (name text PRIMARY KEY)`);
      await tx.execute(sql`INSERT INTO thread_probe VALUES (${name})`);
      await tx.execute(sql`INSERT INTO thread_probe VALUES (${name})`);
    });
    await expect(failed).rejects.toSatisfy((error: unknown) => {
      for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) if ((e as { code?: string }).code === "23505") return true;
      return false;
    });
    const left = await fence.fence.db.asOwner((tx) =>
      queryRows<{ n: number }>(tx, sql`SELECT count(*)::int AS n FROM pg_class WHERE relname = 'thread_probe' AND relpersistence = 't'`),
    );
    expect(left[0]!.n).toBe(0); // the CREATE was rolled back with the rest
  });

  it("delivers a change notification with the commit: a key revoked by another writer is refused on the next request", async () => {
    const other = await fence.createTenant("threaded-revoked");
    expect((await fence.request("GET", "/v1/documents", { key: other.key })).status).toBe(200);
    await new TenantAdmin(fence.fence.db, new TenantCaches(10)).revokeKey(other.id, other.keyId);
    expect((await fence.request("GET", "/v1/documents", { key: other.key })).status).toBe(401);
  });
});
