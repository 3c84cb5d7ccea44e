import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countDocumentChunks, countTenantRows, expectError, search } from "../../support/api-contract.js";
import { startFakeOpenAI, type FakeOpenAI } from "../../support/fake-openai.js";
import { backends, TestFence, type Backend, type TestTenant } from "../../support/harness.js";
import {
  getJob,
  listJobs,
  multiChunkText,
  stepsOf,
  waitForBatch,
  waitForJob,
  type TenantGet,
} from "../../support/job-helpers.js";
import { chargedTotals, counters, ledgerRows, reservationCount } from "../../support/metering-helpers.js";
import { isolatedBackend } from "../../support/scratch-database.js";
import type { BatchAcceptedJson, DocumentJson, DocumentListJson, IngestedDocumentJson, IssuedKeyJson, JobJson, JobListJson } from "../../support/api-types.js";

/**
 * Durable ingestion over HTTP: async uploads (Prefer: respond-async, or larger than
 * FENCE_ASYNC_INGEST_BYTES), batches (JSON and multipart), validation of the whole batch before
 * anything is queued, Idempotency-Key on batches, permanent failures, retries with one charge,
 * cancel, per-source serialisation, and a revoked key. On Postgres every group gets a scratch
 * database of its own: the job queue is global, so another suite's workers (or another group's)
 * must not claim these jobs.
 */
const FAST = { FENCE_JOB_POLL_MS: "50", FENCE_JOB_RETRY_BASE_MS: "50" };

const isolated = (backend: Backend) => isolatedBackend(backend, "fence_jobs_api");

function tenantGet(fence: TestFence, tenant: { key: string }): TenantGet {
  return async (path) => fence.request("GET", path, { key: tenant.key });
}

async function json<T>(res: Response, status: number): Promise<T> {
  const text = await res.text();
  expect(res.status, text.slice(0, 500)).toBe(status);
  return JSON.parse(text) as T;
}

function batchForm(files: { name: string; type: string; content: string | Uint8Array }[], sourceIds: string[] = []): FormData {
  const form = new FormData();
  for (const file of files) form.append("file", new File([file.content], file.name, { type: file.type }));
  for (const id of sourceIds) form.append("source_id", id);
  return form;
}

describe.each(backends)("durable ingestion jobs over HTTP on $name", (baseBackend) => {
  describe("one instance with workers", () => {
    let fence: TestFence;
    let drop: () => Promise<void>;
    const post = (tenant: TestTenant, path: string, init: { json?: unknown; body?: FormData; headers?: Record<string, string> }) =>
      fence.request("POST", path, { key: tenant.key, ...init });

    beforeAll(async () => {
      const db = await isolated(baseBackend);
      drop = db.drop;
      fence = await TestFence.start(db.backend, {
        env: { ...FAST, FENCE_ASYNC_INGEST_BYTES: "2000", FENCE_BATCH_MAX_DOCUMENTS: "5" },
      });
    });
    afterAll(async () => {
      await fence?.close();
      await drop?.();
    });

    it("Prefer: respond-async queues an upload (202 + Location) that runs parse → chunk → embed → store", async () => {
      const tenant = await fence.createTenant("jobs-async", "enterprise");
      const text = multiChunkText("Lighthouse keeping", 3) + "\n\nThe lamp of the Kestrel Point lighthouse is polished every dawn.";
      const res = await post(tenant, "/v1/documents", { json: { title: "Lighthouse", text }, headers: { prefer: "respond-async" } });
      const queued = await json<JobJson>(res, 202);
      expect(res.headers.get("location")).toBe(`/v1/jobs/${queued.id}`);
      expect(queued).toMatchObject({ kind: "ingest_document", priority: "interactive", title: "Lighthouse", source_id: null, result: null, error: null });
      expect(["queued", "running"]).toContain(queued.status);

      const done = await waitForJob(tenantGet(fence, tenant), queued.id);
      expect(done.status, JSON.stringify(done)).toBe("succeeded");
      expect(done.attempts).toBe(1);
      expect(done.error).toBeNull();
      expect(done.finished_at).not.toBeNull();
      expect(done.steps.map((s) => s.name)).toEqual(["parse", "chunk", "embed", "store"]);
      for (const step of done.steps) {
        expect(step).toMatchObject({ status: "succeeded", attempt: 1 });
        expect(step.duration_ms).toBeGreaterThanOrEqual(0);
        expect(step.detail, step.name).toBeDefined();
      }
      expect(done.result?.outcome).toBe("created");

      const doc = await json<DocumentJson>(await fence.request("GET", `/v1/documents/${done.result!.document_id}`, { key: tenant.key }), 200);
      expect(doc.chunk_count).toBeGreaterThan(1);
      expect(await countDocumentChunks(fence, doc.id)).toBe(doc.chunk_count);
      const [parse, chunk, embed, store] = done.steps;
      expect(parse!.detail).toEqual({ characters: expect.any(Number), media_type: "text/markdown" });
      expect(chunk!.detail).toEqual({ chunks: doc.chunk_count });
      expect(embed!.detail).toEqual({ vectors: doc.chunk_count });
      expect(store!.detail).toEqual({ chunks: doc.chunk_count, version: 1 });

      const results = await search(fence, tenant.key, "When is the Kestrel Point lighthouse lamp polished?");
      expect(results[0]?.document_id).toBe(doc.id);
    });

    it("queues an upload larger than FENCE_ASYNC_INGEST_BYTES without the header; a small one stays synchronous", async () => {
      const tenant = await fence.createTenant("jobs-size", "enterprise");
      const small = await fence.request("POST", "/v1/documents", { key: tenant.key, json: { title: "Small", text: "Otters hold hands while they sleep." } });
      expect((await json<IngestedDocumentJson>(small, 201)).outcome).toBe("created");

      const text = multiChunkText("Orchard pruning", 4);
      expect(new TextEncoder().encode(text).length).toBeGreaterThan(2000);
      const res = await fence.request("POST", "/v1/documents", { key: tenant.key, json: { title: "Orchard", text } });
      const queued = await json<JobJson>(res, 202);
      expect(res.headers.get("location")).toBe(`/v1/jobs/${queued.id}`);
      expect(queued.priority).toBe("interactive");
      const done = await waitForJob(tenantGet(fence, tenant), queued.id);
      expect(done.status).toBe("succeeded");
      expect((await countTenantRows(fence, tenant.id)).documents).toBe(2);
    });

    it("a JSON batch of 3 documents: 202 with 3 bulk jobs, listed by batch_id, all stored", async () => {
      const tenant = await fence.createTenant("jobs-batch-json", "enterprise");
      const get = tenantGet(fence, tenant);
      await fence.upload(tenant, { title: "Unrelated", text: "A document that is not part of the batch." });
      const documents = [
        { title: "Bees", text: "Honey bees dance to tell the hive where flowers are.", source_id: "nature/bees" },
        { title: "Ants", text: "Leafcutter ants farm fungus in underground gardens." },
        { title: "Moths", text: "Moths navigate by the moon and get confused by street lamps.", metadata: { shelf: 2 } },
      ];
      const res = await post(tenant, "/v1/documents/batch", { json: { documents } });
      const batch = await json<BatchAcceptedJson>(res, 202);
      expect(res.headers.get("location")).toBe(`/v1/jobs?batch_id=${batch.batch_id}`);
      expect(batch.jobs).toHaveLength(3);
      for (const job of batch.jobs) expect(job).toMatchObject({ batch_id: batch.batch_id, priority: "bulk", kind: "ingest_document" });
      expect(batch.jobs.map((j) => j.title)).toEqual(["Bees", "Ants", "Moths"]);
      expect(batch.jobs.map((j) => j.source_id)).toEqual(["nature/bees", null, null]);

      const listed = await listJobs(get, `batch_id=${batch.batch_id}`);
      expect(listed.map((j) => j.id).sort()).toEqual(batch.jobs.map((j) => j.id).sort());

      const ended = await waitForBatch(get, batch.batch_id, 3);
      expect(ended.map((j) => j.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
      const docIds = new Set(ended.map((j) => j.result!.document_id));
      expect(docIds.size).toBe(3);
      for (const id of docIds) expect((await fence.request("GET", `/v1/documents/${id}`, { key: tenant.key })).status).toBe(200);
      // The batch's three plus the synchronous one before it; nothing else.
      expect((await countTenantRows(fence, tenant.id)).documents).toBe(4);
      expect(await listJobs(get)).toHaveLength(3);
    });

    it("a multipart batch (txt, md, html) with one source_id per file", async () => {
      const tenant = await fence.createTenant("jobs-batch-multipart", "enterprise");
      const get = tenantGet(fence, tenant);
      const form = batchForm(
        [
          { name: "notes.txt", type: "text/plain", content: "Penguins huddle together to survive the Antarctic winter." },
          { name: "guide.md", type: "text/markdown", content: "# Glaciers\n\nGlaciers carve U-shaped valleys over millennia." },
          { name: "page.html", type: "text/html", content: "<html><body><h1>Deserts</h1><p>The Atacama receives almost no rain.</p></body></html>" },
        ],
        ["kb/penguins", "kb/glaciers", "kb/deserts"],
      );
      const batch = await json<BatchAcceptedJson>(await post(tenant, "/v1/documents/batch", { body: form }), 202);
      expect(batch.jobs.map((j) => [j.title, j.source_id, j.priority])).toEqual([
        ["notes.txt", "kb/penguins", "bulk"],
        ["guide.md", "kb/glaciers", "bulk"],
        ["page.html", "kb/deserts", "bulk"],
      ]);
      expect((await listJobs(get, `batch_id=${batch.batch_id}`)).map((j) => j.id).sort()).toEqual(batch.jobs.map((j) => j.id).sort());
      const ended = await waitForBatch(get, batch.batch_id, 3);
      expect(ended.every((j) => j.status === "succeeded"), JSON.stringify(ended)).toBe(true);

      const list = await json<DocumentListJson>(await fence.request("GET", "/v1/documents?limit=100", { key: tenant.key }), 200);
      expect(list.documents.map((d) => [d.source_id, d.media_type]).sort()).toEqual([
        ["kb/deserts", "text/html"],
        ["kb/glaciers", "text/markdown"],
        ["kb/penguins", "text/plain"],
      ]);
      const results = await search(fence, tenant.key, "Atacama rain desert");
      expect(results[0]?.title).toBe("page.html");
    });

    it("refuses a bad batch whole (400/415) and queues nothing of it", async () => {
      const tenant = await fence.createTenant("jobs-batch-invalid", "enterprise");
      const get = tenantGet(fence, tenant);
      const good = { name: "ok.txt", type: "text/plain", content: "A perfectly fine text file." };
      const before = (await listJobs(get)).length;
      expect(before).toBe(0);

      const mismatched = batchForm([good, { ...good, name: "ok2.txt" }], ["only-one"]);
      const e1 = await expectError(await post(tenant, "/v1/documents/batch", { body: mismatched }), 400, "validation_error");
      expect(e1.error.message).toMatch(/source_id/);

      const withExe = batchForm([good, { name: "setup.exe", type: "application/x-msdownload", content: "MZ\x90\x00binary" }]);
      await expectError(await post(tenant, "/v1/documents/batch", { body: withExe }), 415, "unsupported_media_type");

      const withEmpty = batchForm([good, { name: "empty.txt", type: "text/plain", content: "" }]);
      const e3 = await expectError(await post(tenant, "/v1/documents/batch", { body: withEmpty }), 400, "validation_error");
      expect(e3.error.message).toMatch(/empty/);

      const six = Array.from({ length: 6 }, (_, i) => ({ text: `Document number ${i}.` }));
      const e4 = await expectError(await post(tenant, "/v1/documents/batch", { json: { documents: six } }), 400, "validation_error");
      expect(e4.error.message).toMatch(/at most 5/);

      await expectError(await post(tenant, "/v1/documents/batch", { json: { documents: [] } }), 400, "validation_error");
      await expectError(await post(tenant, "/v1/documents/batch", { body: new FormData() }), 400, "validation_error");

      expect(await listJobs(get)).toHaveLength(before);
      expect((await countTenantRows(fence, tenant.id)).documents).toBe(0);
    });

    it("a batch resent with the same Idempotency-Key returns the same batch and jobs, and stores nothing twice", async () => {
      const tenant = await fence.createTenant("jobs-idempotent", "enterprise");
      const get = tenantGet(fence, tenant);
      const headers = { "idempotency-key": `batch-${Math.random().toString(36).slice(2)}` };
      const body = {
        documents: [
          { title: "Rivers", text: "Rivers carry sediment from mountains to the sea." },
          { title: "Lakes", text: "Lakes freeze from the top down in winter.", source_id: "water/lakes" },
        ],
      };
      const first = await json<BatchAcceptedJson>(await post(tenant, "/v1/documents/batch", { json: body, headers }), 202);
      const again = await json<BatchAcceptedJson>(await post(tenant, "/v1/documents/batch", { json: body, headers }), 202);
      expect(again.batch_id).toBe(first.batch_id);
      // Same jobs, in the order the batch was sent (titles follow the documents array).
      expect(again.jobs.map((j) => j.id)).toEqual(first.jobs.map((j) => j.id));
      expect(first.jobs.map((j) => j.title)).toEqual(["Rivers", "Lakes"]);

      const ended = await waitForBatch(get, first.batch_id, 2);
      expect(ended.every((j) => j.status === "succeeded")).toBe(true);
      const late = await json<BatchAcceptedJson>(await post(tenant, "/v1/documents/batch", { json: body, headers }), 202);
      expect(late.batch_id).toBe(first.batch_id);
      expect(late.jobs.map((j) => [j.id, j.status]).sort()).toEqual(first.jobs.map((j) => [j.id, "succeeded"]).sort());

      // The same key with a different body is another request: refused, nothing queued.
      const changed = { documents: [...body.documents, { title: "Seas", text: "Seas are salty." }] };
      const conflict = await expectError(await post(tenant, "/v1/documents/batch", { json: changed, headers }), 409, "idempotency_conflict");
      expect(conflict.error.message).toMatch(/different request/);

      expect(await listJobs(get)).toHaveLength(2);
      expect((await countTenantRows(fence, tenant.id)).documents).toBe(2);
      const charged = (await ledgerRows(fence, tenant, "embed_documents")).filter((r) => r.status === "charged");
      expect(charged).toHaveLength(2);

      // The same key from another tenant is that tenant's own request: its own jobs, never a replay of these.
      const other = await fence.createTenant("jobs-idempotent-other", "enterprise");
      const otherBody = { documents: [{ title: "Caves", text: "Stalactites hang from the ceiling of limestone caves." }] };
      const theirs = await json<BatchAcceptedJson>(await post(other, "/v1/documents/batch", { json: otherBody, headers }), 202);
      expect(theirs.jobs.map((j) => j.title)).toEqual(["Caves"]);
      expect(theirs.batch_id).not.toBe(first.batch_id);
      expect(theirs.jobs.map((j) => j.id)).not.toContain(first.jobs[0]!.id);
      const theirsEnded = await waitForBatch(tenantGet(fence, other), theirs.batch_id, 1);
      expect(theirsEnded[0]!.status).toBe("succeeded");
      expect(await listJobs(get)).toHaveLength(2);
      expect((await countTenantRows(fence, other.id)).documents).toBe(1);
    });

    it("a corrupt PDF fails permanently (unprocessable_document) after one attempt, storing nothing", async () => {
      const tenant = await fence.createTenant("jobs-corrupt-pdf", "enterprise");
      const form = batchForm([{ name: "broken.pdf", type: "application/pdf", content: "%PDF-1.7\nthis is not really a PDF at all\n%%EOF" }]);
      const batch = await json<BatchAcceptedJson>(await post(tenant, "/v1/documents/batch", { body: form }), 202);
      const job = await waitForJob(tenantGet(fence, tenant), batch.jobs[0]!.id);
      expect(job.status, JSON.stringify(job)).toBe("failed");
      expect(job.error?.code).toBe("unprocessable_document");
      expect(job.attempts).toBe(1);
      expect(job.result).toBeNull();
      expect(job.finished_at).not.toBeNull();
      expect(stepsOf(job, 1)).toEqual(["parse:failed"]);
      expect(job.steps[0]!.error).toMatch(/PDF/);
      expect(await countTenantRows(fence, tenant.id)).toMatchObject({ documents: 0, chunks: 0 });
    });

    it("two batch items with the same source_id run one after the other: one document, version 2", async () => {
      const tenant = await fence.createTenant("jobs-same-source", "enterprise");
      const get = tenantGet(fence, tenant);
      const documents = [
        { title: "Leave policy", text: multiChunkText("Leave policy, first draft", 3), source_id: "hr/leave" },
        { title: "Leave policy", text: multiChunkText("Leave policy, second draft", 3), source_id: "hr/leave" },
      ];
      const batch = await json<BatchAcceptedJson>(await post(tenant, "/v1/documents/batch", { json: { documents } }), 202);
      const ended = await waitForBatch(get, batch.batch_id, 2);
      expect(ended.map((j) => j.status)).toEqual(["succeeded", "succeeded"]);
      const byOutcome = new Map(ended.map((j) => [j.result!.outcome, j]));
      expect([...byOutcome.keys()].sort()).toEqual(["created", "replaced"]);
      const created = byOutcome.get("created")!;
      const replaced = byOutcome.get("replaced")!;
      expect(replaced.result!.document_id).toBe(created.result!.document_id);
      // Serialised: the second job started parsing only after the first one's store step ended.
      const firstStore = created.steps.find((s) => s.name === "store")!;
      const secondParse = replaced.steps.find((s) => s.name === "parse")!;
      expect(Date.parse(secondParse.started_at)).toBeGreaterThanOrEqual(Date.parse(firstStore.started_at) + firstStore.duration_ms);

      const list = await json<DocumentListJson>(await fence.request("GET", "/v1/documents?limit=100", { key: tenant.key }), 200);
      expect(list.documents).toHaveLength(1);
      expect(list.documents[0]).toMatchObject({ id: created.result!.document_id, source_id: "hr/leave", version: 2, chunk_count: 3 });
      expect(await countTenantRows(fence, tenant.id)).toMatchObject({ documents: 1, chunks: 3 });
    });

    it("answers 404 for a missing, malformed or other tenant's job id, and 409 when cancelling a succeeded job", async () => {
      const owner = await fence.createTenant("jobs-owner", "enterprise");
      const other = await fence.createTenant("jobs-other", "enterprise");
      const queued = await json<JobJson>(
        await post(owner, "/v1/documents", { json: { text: "Hedgehogs hibernate under leaves." }, headers: { prefer: "respond-async" } }),
        202,
      );
      const done = await waitForJob(tenantGet(fence, owner), queued.id);
      expect(done.status).toBe("succeeded");

      const conflict = await expectError(await post(owner, `/v1/jobs/${done.id}/cancel`, {}), 409, "job_not_cancellable");
      expect(conflict.error.details).toEqual({ status: "succeeded" });

      await expectError(await fence.request("GET", `/v1/jobs/${crypto.randomUUID()}`, { key: owner.key }), 404, "not_found");
      await expectError(await fence.request("GET", "/v1/jobs/not-a-uuid", { key: owner.key }), 404, "not_found");
      await expectError(await post(owner, `/v1/jobs/${crypto.randomUUID()}/cancel`, {}), 404, "not_found");
      await expectError(await post(owner, "/v1/jobs/not-a-uuid/cancel", {}), 404, "not_found");
      const foreign = await expectError(await fence.request("GET", `/v1/jobs/${done.id}`, { key: other.key }), 404, "not_found");
      const missing = await expectError(await fence.request("GET", `/v1/jobs/${crypto.randomUUID()}`, { key: other.key }), 404, "not_found");
      expect(foreign.error.message).toBe(missing.error.message);
      await expectError(await post(other, `/v1/jobs/${done.id}/cancel`, {}), 404, "not_found");
      expect(await listJobs(tenantGet(fence, other))).toEqual([]);
    });
  });

  describe("an API-only instance (workers=0), then one with workers on the same database", () => {
    let backend: Backend;
    let drop: () => Promise<void>;
    let apiOnly: TestFence | undefined;
    let worker: TestFence | undefined;

    beforeAll(async () => {
      const db = await isolated(baseBackend);
      backend = db.backend;
      drop = db.drop;
      apiOnly = await TestFence.start(backend, { env: { ...FAST, FENCE_JOB_WORKERS: "0" } });
    });
    afterAll(async () => {
      await apiOnly?.close();
      await worker?.close();
      await drop?.();
    });

    const asyncUpload = (fence: TestFence, key: string, text: string) =>
      fence.request("POST", "/v1/documents", { key, json: { text }, headers: { prefer: "respond-async" } });

    it("cancels a queued job, and refuses to cancel it again (409 job_not_cancellable)", async () => {
      const fence = apiOnly!;
      const tenant = await fence.createTenant("jobs-cancel", "enterprise");
      const get = tenantGet(fence, tenant);
      const queued = await json<JobJson>(await asyncUpload(fence, tenant.key, "Cancel me before I run."), 202);
      expect((await getJob(get, queued.id)).status).toBe("queued");

      const cancelled = await json<JobJson>(await fence.request("POST", `/v1/jobs/${queued.id}/cancel`, { key: tenant.key }), 200);
      expect(cancelled).toMatchObject({ id: queued.id, status: "cancelled", attempts: 0, result: null });
      expect(cancelled.finished_at).not.toBeNull();
      expect(await getJob(get, queued.id)).toMatchObject({ status: "cancelled", attempts: 0 });
      const again = await expectError(await fence.request("POST", `/v1/jobs/${queued.id}/cancel`, { key: tenant.key }), 409, "job_not_cancellable");
      expect(again.error.details).toEqual({ status: "cancelled" });
      expect((await listJobs(get, "status=cancelled")).map((j) => j.id)).toEqual([queued.id]);
      expect(await listJobs(get, "status=queued")).toEqual([]);
    });

    it("pages through jobs newest batch first, each batch in the order it was sent, with no gaps or repeats", async () => {
      const fence = apiOnly!;
      const tenant = await fence.createTenant("jobs-pages", "enterprise");
      const get = tenantGet(fence, tenant);
      const batch = async (titles: string[]) =>
        (
          await json<BatchAcceptedJson>(
            await fence.request("POST", "/v1/documents/batch", { key: tenant.key, json: { documents: titles.map((t) => ({ title: t, text: `About ${t}.` })) } }),
            202,
          )
        ).jobs.map((j) => j.title);
      const older = await batch(["o1", "o2", "o3", "o4", "o5"]);
      await new Promise((r) => setTimeout(r, 5)); // a later created_at for the second batch
      const newer = await batch(["n1", "n2", "n3"]);
      expect(older).toEqual(["o1", "o2", "o3", "o4", "o5"]);

      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await get(`/v1/jobs?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
        const page = await json<JobListJson>(res, 200);
        expect(page.jobs.length).toBeLessThanOrEqual(3);
        seen.push(...page.jobs.map((j) => j.title!));
        cursor = page.next_cursor;
      } while (cursor);
      expect(seen).toEqual([...newer, ...older]);
      await expectError(await get(`/v1/jobs?cursor=${crypto.randomUUID()}`), 400, "validation_error");
    });

    // Two instances on one database need a server: an in-memory PGlite is private to its instance.
    it.skipIf(!baseBackend.databaseUrl)("a job whose key is revoked or expires while it waits fails key_revoked on another instance", async () => {
      const fence = apiOnly!;
      const tenant = await fence.createTenant("jobs-revoked", "enterprise");
      // A second key of the same tenant: one key's job is orphaned by the revocation, the other's runs.
      const second = await json<IssuedKeyJson>(await fence.admin("POST", `/tenants/${tenant.id}/keys`, { name: "second" }), 201);
      const doomed = await json<JobJson>(await asyncUpload(fence, tenant.key, "Queued by a key that is about to be revoked."), 202);
      const control = await json<JobJson>(await asyncUpload(fence, second.key, "Queued by a key that stays valid."), 202);
      const expiresAt = Date.now() + 1_500;
      const expiring = await json<IssuedKeyJson>(
        await fence.admin("POST", `/tenants/${tenant.id}/keys`, { name: "expiring", scopes: ["ingest"], expires_at: new Date(expiresAt).toISOString() }),
        201,
      );
      const lapsed = await json<JobJson>(await asyncUpload(fence, expiring.key, "Queued by a key that is about to expire."), 202);
      expect((await fence.admin("DELETE", `/tenants/${tenant.id}/keys/${tenant.keyId}`)).status).toBe(204);
      expect((await fence.request("GET", `/v1/jobs/${doomed.id}`, { key: tenant.key })).status).toBe(401);
      expect((await getJob(tenantGet(fence, second), doomed.id)).status).toBe("queued");

      await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt + 100 - Date.now())));
      worker = await TestFence.start(backend, { env: { ...FAST, FENCE_JOB_WORKERS: "1" } });
      const viaSecond = tenantGet(worker, second);
      const failed = await waitForJob(viaSecond, doomed.id);
      expect(failed.status, JSON.stringify(failed)).toBe("failed");
      expect(failed.error?.code).toBe("key_revoked");
      expect(failed.result).toBeNull();
      expect(failed.attempts).toBe(1);
      expect(await waitForJob(viaSecond, lapsed.id)).toMatchObject({ status: "failed", error: { code: "key_revoked" }, result: null });
      expect((await waitForJob(viaSecond, control.id)).status).toBe("succeeded");
      expect((await countTenantRows(worker, tenant.id)).documents).toBe(1);
      const conflict = await expectError(await worker.request("POST", `/v1/jobs/${doomed.id}/cancel`, { key: second.key }), 409, "job_not_cancellable");
      expect(conflict.error.details).toEqual({ status: "failed" });
    });
  });
  describe("retries against a failing OpenAI-compatible embeddings endpoint", () => {
    let fake: FakeOpenAI;
    let fence: TestFence;
    let drop: () => Promise<void>;

    beforeAll(async () => {
      fake = await startFakeOpenAI({ embeddingDimensions: 64 });
      const db = await isolated(baseBackend);
      drop = db.drop;
      fence = await TestFence.start(db.backend, {
        // A retry base of 1 s (backoff 0.5–1 s) keeps the job visibly queued between attempts.
        env: { FENCE_JOB_POLL_MS: "50", FENCE_JOB_RETRY_BASE_MS: "1000", FENCE_EMBEDDINGS: "openai", EMBEDDINGS_BASE_URL: fake.url, EMBEDDINGS_MODEL: "fake-embed" },
        useConfiguredEmbeddings: true,
      });
    });
    afterAll(async () => {
      await fence?.close();
      await fake?.close();
      await drop?.();
    });

    it("a 5xx from the provider requeues the job with its error; the next attempt stores one document, charged once", async () => {
      const tenant = await fence.createTenant("jobs-retry", "enterprise");
      const get = tenantGet(fence, tenant);
      const embedCalls = () => fake.requests.filter((r) => r.path === "/v1/embeddings" && JSON.stringify(r.body.input).includes("Quokka")).length;
      // The client retries a 5xx twice by itself: three failures make the whole first attempt fail.
      fake.failNext("/v1/embeddings", 500, 3);
      const text = multiChunkText("Quokka habitat", 2);
      const queued = await json<JobJson>(
        await fence.request("POST", "/v1/documents", { key: tenant.key, json: { title: "Quokkas", text }, headers: { prefer: "respond-async" } }),
        202,
      );

      const waiting = await waitForJob(get, queued.id, (j) => j.status === "queued" && j.attempts === 1);
      expect(waiting.error?.code).toBe("upstream_error");
      expect(stepsOf(waiting, 1)).toEqual(["parse:succeeded", "chunk:succeeded", "embed:failed"]);
      expect(Date.parse(waiting.run_after)).toBeGreaterThan(Date.parse(waiting.created_at));
      expect(waiting.result).toBeNull();
      expect(embedCalls()).toBe(3);

      const done = await waitForJob(get, queued.id);
      expect(done.status, JSON.stringify(done)).toBe("succeeded");
      expect(done.attempts).toBe(2);
      expect(done.error).toBeNull();
      expect(stepsOf(done, 2)).toEqual(["parse:succeeded", "chunk:succeeded", "embed:succeeded", "store:succeeded"]);
      expect(embedCalls()).toBe(4);

      const stored = await countTenantRows(fence, tenant.id);
      expect(stored.documents).toBe(1);
      expect(stored.chunks).toBe(done.steps.find((s) => s.name === "store")!.detail!.chunks);
      const rows = await ledgerRows(fence, tenant, "embed_documents");
      const charged = rows.filter((r) => r.status === "charged");
      // Charged once per job (its attempts share the id); the failed attempt's record stays its own.
      expect(charged.map((r) => r.eventId)).toEqual([`job:${queued.id}:embed_documents`]);
      expect(charged[0]!.inputTokens).toBeGreaterThan(0);
      const failed = rows.filter((r) => r.status === "failed");
      expect(failed.map((r) => [r.eventId, r.inputTokens])).toEqual([[`job:${queued.id}:attempt-1:embed_documents`, 0]]);
      expect((await counters(fence, tenant)).day.tokens).toBe(chargedTotals(rows).tokens);
      expect(await reservationCount(fence, tenant)).toBe(0);
    });
  });
});
