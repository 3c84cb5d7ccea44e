import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../../src/db/database.js";
import { DirectoryPayloadFiles } from "../../../src/db/payload-files.js";
import { loadPayload } from "../../../src/jobs/job-payloads.js";
import { authenticateTenantKey } from "../../../src/tenancy/authenticate.js";
import { backends, isServerBackend, TestFence, type TestTenant } from "../../support/harness.js";
import { getJob, waitForJob } from "../../support/job-helpers.js";
import { isolatedBackend } from "../../support/scratch-database.js";
import type { JobJson } from "../../support/api-types.js";

/**
 * Where a queued upload's bytes wait for its job (issue 16; docs/hostile-input.md): in the jobs row
 * on Postgres, in a file beside the embedded database on PGlite, whose one thread a 10 MB payload
 * in a statement held for up to a second. Either way the row carries the size (`payload_bytes`,
 * what the queue caps sum), a job's end drops the bytes, a restart resumes from them, and a purge
 * or a crash leaves nothing behind.
 */

const queue = (fence: TestFence, tenant: TestTenant, text: string) =>
  fence.request("POST", "/v1/documents", { key: tenant.key, json: { title: "Queued", text }, headers: { prefer: "respond-async" } });

async function queued(res: Response): Promise<JobJson> {
  expect(res.status, await res.clone().text()).toBe(202);
  return (await res.json()) as JobJson;
}

async function rowOf(fence: TestFence, jobId: string) {
  const [row] = await fence.fence.db.asPlatformAdmin("test: read a job's payload columns", (tx) =>
    queryRows<{ in_row: boolean; payload_bytes: number | null }>(tx, sql`SELECT payload IS NOT NULL AS in_row, payload_bytes FROM jobs WHERE id = ${jobId}`),
  );
  return row!;
}

describe.each(backends)("queued uploads' bytes on $name", (baseBackend) => {
  let fence: TestFence;
  let drop: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    const isolated = await isolatedBackend(baseBackend, "fence_job_payloads");
    drop = isolated.drop;
    fence = await TestFence.start(isolated.backend, { env: { FENCE_JOB_WORKERS: "0" } });
  });
  afterAll(async () => {
    await fence?.close();
    await drop();
  });

  it("the row records the size; the bytes are in it on Postgres and outside it on PGlite; the job's end drops both", async () => {
    const tenant = await fence.createTenant("payload-row", "enterprise");
    const text = "Kestrel Point's lamp is polished every dawn. ".repeat(40);
    const job = await queued(await queue(fence, tenant, text));
    expect(await rowOf(fence, job.id)).toEqual({ in_row: isServerBackend(baseBackend), payload_bytes: Buffer.byteLength(text) });

    expect(await fence.fence.jobRunner.runAvailable(1)).toBe(1);
    expect((await getJob(async (path) => fence.request("GET", path, { key: tenant.key }), job.id)).status).toBe("succeeded");
    expect(await rowOf(fence, job.id)).toEqual({ in_row: false, payload_bytes: null });
    if (fence.fence.db.payloadFiles) expect(await fence.fence.db.payloadFiles.list()).not.toContainEqual({ tenantId: tenant.id, jobId: job.id });
  });

  it("a large file is read back byte for byte (from the row, in slices, on Postgres); another tenant reads nothing", async () => {
    const tenant = await fence.createTenant("payload-large", "enterprise");
    // Every byte value, over several slices and ending inside one: no text decoding may touch it.
    const bytes = new Uint8Array(2.5 * 1024 * 1024 + 7);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + (i >> 11)) & 0xff;
    const form = new FormData();
    // Typed as a PDF: a text file this long would be counted, and refused, at the door.
    form.append("file", new File([bytes], "large.pdf", { type: "application/pdf" }));
    const job = await queued(await fence.request("POST", "/v1/documents", { key: tenant.key, body: form }));
    expect(await rowOf(fence, job.id)).toEqual({ in_row: isServerBackend(baseBackend), payload_bytes: bytes.length });

    const ctx = await authenticateTenantKey(fence.fence.db, tenant.key, `test-${randomUUID()}`);
    const loaded = await loadPayload(fence.fence.db, ctx, job.id);
    expect(loaded?.length).toBe(bytes.length);
    expect(Buffer.compare(Buffer.from(loaded!), Buffer.from(bytes))).toBe(0);

    const other = await fence.createTenant("payload-other", "enterprise");
    const otherCtx = await authenticateTenantKey(fence.fence.db, other.key, `test-${randomUUID()}`);
    expect(await loadPayload(fence.fence.db, otherCtx, job.id)).toBeNull();
  });
});

describe("payload files beside an on-disk embedded database", () => {
  let dataDir: string;
  let fence: TestFence | undefined;
  const pglite = { name: "pglite" as const, databaseUrl: undefined };
  const start = async () => (fence = await TestFence.start(pglite, { env: { FENCE_DATA_DIR: dataDir, FENCE_JOB_WORKERS: "0" } }));
  const filesOf = (tenantId: string) => readdir(join(dataDir, "fence-job-payloads", tenantId)).catch(() => [] as string[]);
  const get = (tenant: TestTenant) => async (path: string) => fence!.request("GET", path, { key: tenant.key });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "fence-payloads-"));
    await start();
  });
  afterAll(async () => {
    await fence?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("keeps the exact bytes in <tenant>/<job>; cancel removes the file", async () => {
    const tenant = await fence!.createTenant("payload-cancel", "enterprise");
    const text = "Ferries to Hallow Isle leave at nine. ".repeat(30);
    const job = await queued(await queue(fence!, tenant, text));
    expect(await readFile(join(dataDir, "fence-job-payloads", tenant.id, job.id), "utf8")).toBe(text);
    // Named under its own tenant: the same job id under another tenant finds nothing.
    expect(await fence!.fence.db.payloadFiles!.read({ tenantId: randomUUID(), jobId: job.id })).toBeNull();

    const cancel = await fence!.request("POST", `/v1/jobs/${job.id}/cancel`, { key: tenant.key });
    expect(cancel.status).toBe(200);
    expect(await filesOf(tenant.id)).toEqual([]);
    expect(await rowOf(fence!, job.id)).toEqual({ in_row: false, payload_bytes: null });
  });

  it("a queued upload survives a restart and runs from its file; orphans and half-written files are swept at start", async () => {
    const tenant = await fence!.createTenant("payload-restart", "enterprise");
    const text = "The Hallow Isle ferry carries bicycles free of charge. ".repeat(20);
    const job = await queued(await queue(fence!, tenant, text));
    // What a crash between a file's write and its row's commit leaves, and a write cut short.
    const orphan = randomUUID();
    await writeFile(join(dataDir, "fence-job-payloads", tenant.id, orphan), "never committed");
    await writeFile(join(dataDir, "fence-job-payloads", tenant.id, `.${randomUUID()}.tmp`), "half");
    const strangerTenant = randomUUID();
    await mkdir(join(dataDir, "fence-job-payloads", strangerTenant));
    await writeFile(join(dataDir, "fence-job-payloads", strangerTenant, randomUUID()), "a deleted tenant's");

    await fence!.close();
    fence = undefined;
    await start();
    expect((await filesOf(tenant.id)).sort()).toEqual([job.id]);
    expect(await filesOf(strangerTenant)).toEqual([]);

    expect(await fence!.fence.jobRunner.runAvailable(1)).toBe(1);
    const done = await waitForJob(get(tenant), job.id);
    expect(done.status, JSON.stringify(done.error)).toBe("succeeded");
    expect(await filesOf(tenant.id)).toEqual([]);
    const search = await fence!.request("POST", "/v1/search", { key: tenant.key, json: { query: "ferry bicycles" } });
    expect(JSON.stringify(await search.json())).toContain("bicycles free of charge");
  });

  it("a job that fails for good drops its file", async () => {
    const tenant = await fence!.createTenant("payload-fail", "enterprise");
    const upload = await fence!.request("POST", "/v1/documents", {
      key: tenant.key,
      body: formWith("not-a-pdf.pdf", "application/pdf", "%PDF-1.4 this is not a PDF at all"),
      headers: { prefer: "respond-async" },
    });
    const job = await queued(upload);
    expect(await filesOf(tenant.id)).toEqual([job.id]);
    expect(await fence!.fence.jobRunner.runAvailable(1)).toBe(1);
    expect((await waitForJob(get(tenant), job.id)).status).toBe("failed");
    expect(await filesOf(tenant.id)).toEqual([]);
  });

  it("a purge removes the tenant's queued uploads", async () => {
    const tenant = await fence!.createTenant("payload-purge", "enterprise");
    await queued(await queue(fence!, tenant, "Lanterns line the Hallow Isle pier. ".repeat(10)));
    expect(await filesOf(tenant.id)).toHaveLength(1);
    expect((await fence!.admin("DELETE", `/tenants/${tenant.id}`)).status).toBe(204);
    await expect(readdir(join(dataDir, "fence-job-payloads", tenant.id))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("names no path outside its folder: a tenant or job id that is not a UUID is refused", async () => {
    const files = new DirectoryPayloadFiles(join(dataDir, "fence-job-payloads"));
    const tenantId = randomUUID();
    for (const key of [
      { tenantId: "..", jobId: randomUUID() },
      { tenantId, jobId: "../../PG_VERSION" },
      { tenantId, jobId: `${randomUUID()}/..` },
    ]) {
      await expect(files.write(key, new Uint8Array([1]))).rejects.toThrow(TypeError);
      await expect(files.read(key)).rejects.toThrow(TypeError);
      await expect(files.remove([key])).rejects.toThrow(TypeError);
    }
    await expect(files.removeTenant("..")).rejects.toThrow(TypeError);
    expect(await readFile(join(dataDir, "PG_VERSION"), "utf8")).toMatch(/^\d+/);
  });
});

function formWith(name: string, type: string, content: string): FormData {
  const form = new FormData();
  form.set("file", new File([content], name, { type }));
  return form;
}
