import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../../src/db/database.js";
import { countTenantRows, expectError, uploadFile } from "../../support/api-contract.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import type { BatchAcceptedJson, IngestedDocumentJson, TenantConfigJson } from "../../support/api-types.js";

/**
 * Issue 14, rows 5, 6, 7 and 11: one string type and one date type for every field of every
 * route, and uploads counted before they are parsed. Every refusal is a 400 naming the field, and
 * stores nothing (documents, chunks and jobs are counted in storage, past row-level security).
 */

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const ID = "00000000-0000-4000-8000-000000000000";

/**
 * The refusal must cost well under a second (the target is 0.3 s; the middleware itself
 * measures ~10–40 ms to read 9 MB and < 1 ms to count). The bound is looser than the target only
 * because this machine's cores are shared with other suites; before the fix these took 4–10 s.
 */
const REFUSAL_BUDGET_MS = 1000;

/** A raw multipart body of `parts` one-byte files, built as bytes (FormData would be slow). */
function tinyPartsForm(parts: number, name = "file"): { body: string; contentType: string } {
  const part = `--XyZ\r\nContent-Disposition: form-data; name="${name}"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\na\r\n`;
  return { body: `${part.repeat(parts)}--XyZ--\r\n`, contentType: "multipart/form-data; boundary=XyZ" };
}

describe.each(backends)("hostile fields on $name", (backend) => {
  let fence: TestFence;
  let tenant: TestTenant;

  beforeAll(async () => {
    // No job workers: an accepted job stays queued, so the jobs table shows exactly what was accepted.
    fence = await TestFence.start(backend, { env: { FENCE_JOB_WORKERS: "0" } });
    tenant = await fence.createTenant("hostile-fields", "enterprise");
  });
  afterAll(() => fence?.close());

  async function jobCount(tenantId = tenant.id): Promise<number> {
    const [row] = await fence.fence.db.asOwner((tx) =>
      queryRows<{ n: number | string }>(tx, sql`SELECT count(*) AS n FROM jobs WHERE tenant_id = ${tenantId}::uuid`),
    );
    return Number(row!.n);
  }

  /** Sends the request and asserts a 400 naming `field`, with no document, chunk or job stored. */
  async function expectRefusedNaming(field: string, send: () => Response | Promise<Response>) {
    const before = { rows: await countTenantRows(fence, tenant.id), jobs: await jobCount() };
    const body = await expectError(await send(), 400, "validation_error");
    expect(body.error.message).toContain(field);
    expect({ rows: await countTenantRows(fence, tenant.id), jobs: await jobCount() }).toEqual(before);
    return body;
  }

  const post = (path: string, json: unknown, headers: Record<string, string> = {}) =>
    fence.request("POST", path, { key: tenant.key, json, headers });
  const get = (path: string) => fence.request("GET", path, { key: tenant.key });

  describe("row 7: one storable string type", () => {
    it.each([
      ["title", { title: "\ud800", text: "A note about lunch." }],
      ["source_id", { source_id: "doc-\udfff", text: "A note about lunch." }],
      ["text", { text: "Lunch at \udc00 noon." }],
      ["metadata", { text: "A note.", metadata: { "k\ud800": 1 } }],
      ["metadata", { text: "A note.", metadata: { nested: [{ note: "x\udfffy" }] } }],
    ])("refuses an unpaired surrogate in %s, queued (Prefer: respond-async) or not", async (field, json) => {
      await expectRefusedNaming(field, () => post("/v1/documents", json, { prefer: "respond-async" }));
      await expectRefusedNaming(field, () => post("/v1/documents", json));
    });

    it("refuses a batch whose source_ids would collide as U+FFFD", async () => {
      const documents = [
        { text: "First.", source_id: "doc-\udfff" },
        { text: "Second.", source_id: "doc-\udffe" },
      ];
      await expectRefusedNaming("documents.0.source_id", () => post("/v1/documents/batch", { documents }));
    });

    it.each([
      ["prompt_version", "/v1/runs?prompt_version=a%00b"],
      ["request_id", "/v1/runs?request_id=%00"],
      ["cursor", "/v1/runs?cursor=%00"],
      ["cursor", "/v1/jobs?cursor=%00"],
      ["batch_id", "/v1/jobs?batch_id=%00"],
      ["cursor", "/v1/evals/cases?cursor=%00"],
      ["cursor", "/v1/documents?cursor=%00"],
    ])("refuses NUL in the query string (%s)", async (field, path) => {
      await expectRefusedNaming(field, () => get(path));
    });

    it("holds admin bodies to the same rule", async () => {
      await expectError(await fence.admin("POST", "/tenants", { name: "bad \ud800 name" }), 400, "validation_error");
      const key = await expectError(await fence.admin("POST", `/tenants/${tenant.id}/keys`, { name: "k", project: "p\udfff" }), 400);
      expect(key.error.message).toContain("project");
      const persona = await expectError(await fence.admin("PATCH", `/tenants/${tenant.id}/config`, { persona: "Be \ud800 kind" }), 400);
      expect(persona.error.message).toContain("persona");
      const model = await expectError(
        await fence.admin("PUT", "/plans/hostile", { tokens_per_day: null, tokens_per_month: null, spend_per_month_micros: null, preferred_model: "m\u0000" }),
        400,
      );
      expect(model.error.message).toContain("preferred_model");
      const config = (await (await fence.admin("GET", `/tenants/${tenant.id}/config`)).json()) as TenantConfigJson;
      expect(config.overrides).toEqual({});
    });

    it("still accepts well-formed text, emoji and all", async () => {
      const res = await post("/v1/documents", { title: "Lunch 😀", text: "Team lunch 🍕 on Friday.", source_id: "doc-😀" });
      expect(res.status).toBe(201);
    });
  });

  describe("row 6: one date type", () => {
    it.each([
      ["since", "/v1/runs?since=0000-01-01T00:00:00Z"],
      ["since", "/v1/runs?since=9999-12-31T23:59:59-05:00"],
      ["since", "/v1/runs?since=2024-02-30T00:00:00Z"],
      ["to", "/v1/usage?from=9999-12-01&to=9999-12-31T23:00:00-05:00"],
      ["from", "/v1/usage?from=0000-01-01&to=0000-02-01"],
      ["cursor", `/v1/documents?cursor=${b64(["0000-01-01T00:00:00.000Z", ID])}`],
      ["cursor", `/v1/documents?cursor=${b64(["+275760-09-13T00:00:00.000Z", ID])}`],
      ["cursor", `/v1/documents?cursor=${b64(["-271821-04-20T00:00:00.000Z", ID])}`],
    ])("refuses an unstorable date in %s (%s)", async (field, path) => {
      await expectRefusedNaming(field, () => get(path));
    });

    it.each([
      ["since", `/tenants/{tenant}/runs?since=0000-01-01T00:00:00Z`],
      ["to", "/usage?from=9999-12-01&to=9999-12-31T23:00:00-05:00"],
      ["from", "/usage/reconciliation?from=0000-12-01&to=0001-01-01"],
    ])("refuses an unstorable date in %s on the admin routes (%s)", async (field, path) => {
      const body = await expectError(await fence.admin("GET", path.replace("{tenant}", tenant.id)), 400, "validation_error");
      expect(body.error.message).toContain(field);
    });

    it("refuses an unstorable debug_log_prompts_until", async () => {
      const body = await expectError(await fence.admin("PATCH", `/tenants/${tenant.id}/config`, { debug_log_prompts_until: "0000-01-01T00:00:00Z" }), 400);
      expect(body.error.message).toContain("debug_log_prompts_until");
    });

    it("accepts the edges of the range", async () => {
      expect((await get("/v1/runs?since=0001-01-01T00:00:00Z")).status).toBe(200);
      expect((await get("/v1/runs?since=9999-12-31T23:59:59Z")).status).toBe(200);
      expect((await get("/v1/usage?from=9999-12-01&to=9999-12-31T23:00:00Z")).status).toBe(200);
      expect((await get(`/v1/documents?cursor=${b64(["9999-12-31T23:59:59.999Z", ID])}`)).status).toBe(200);
    });
  });

  describe("row 5: uploads counted before they are parsed", () => {
    it("refuses 690,000 tiny JSON documents in a few hundred milliseconds", async () => {
      const body = `{"documents":[${Array.from({ length: 690_000 }, () => '{"text":"a"}').join(",")}]}`;
      const started = performance.now();
      const headers = { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) };
      const res = await fence.request("POST", "/v1/documents/batch", { key: tenant.key, body, headers });
      const elapsed = performance.now() - started;
      const error = await expectRefusedNaming("documents", async () => res);
      expect(error.error.message).toContain(`at most ${fence.config.limits.batchMaxDocuments} documents`);
      expect(elapsed).toBeLessThan(REFUSAL_BUDGET_MS);
    });

    it("refuses 80,000 one-byte multipart parts in a few hundred milliseconds", async () => {
      const { body, contentType } = tinyPartsForm(80_000);
      const started = performance.now();
      const headers = { "content-type": contentType, "content-length": String(Buffer.byteLength(body)) };
      const res = await fence.request("POST", "/v1/documents/batch", { key: tenant.key, body, headers });
      const elapsed = performance.now() - started;
      const error = await expectRefusedNaming("file", async () => res);
      expect(error.error.message).toContain(`at most ${fence.config.limits.batchMaxDocuments} documents`);
      expect(elapsed).toBeLessThan(REFUSAL_BUDGET_MS);
    });

    it("parses a large form off the event loop: the file is stored whole, and a malformed one is refused", async () => {
      // Over 64 KiB: the form is cut into its fields and files on a parse thread (request-body.ts).
      const text = `# Field notes\n\n${"The tide came in at dawn and left the flats by noon. ".repeat(1_300)}Last line.`;
      const res = await uploadFile(fence, tenant.key, { name: "notes.md", type: "text/markdown", content: text }, { source_id: "large-form" });
      expect(res.status).toBe(201);
      const doc = (await res.json()) as IngestedDocumentJson;
      const [row] = await fence.fence.db.asOwner((tx) =>
        queryRows<{ title: string; chunks: number | string; last: string }>(
          tx,
          sql`SELECT d.title, (SELECT count(*) FROM chunks c WHERE c.tenant_id = d.tenant_id AND c.document_id = d.id) AS chunks,
                (SELECT c.text FROM chunks c WHERE c.tenant_id = d.tenant_id AND c.document_id = d.id ORDER BY c.position DESC LIMIT 1) AS last
              FROM documents d WHERE d.tenant_id = ${tenant.id} AND d.id = ${doc.id}`,
        ),
      );
      expect(row!.title).toBe("notes.md");
      expect(Number(row!.chunks)).toBeGreaterThan(1);
      expect(row!.last).toContain("Last line.");

      const before = { rows: await countTenantRows(fence, tenant.id), jobs: await jobCount() };
      const broken = `--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n${"a".repeat(100_000)}`; // no closing delimiter
      const refused = await fence.request("POST", "/v1/documents", { key: tenant.key, body: broken, headers: { "content-type": "multipart/form-data; boundary=XyZ" } });
      const error = await expectError(refused, 400, "validation_error");
      expect(error.error.message).toContain("Malformed FormData request");
      expect({ rows: await countTenantRows(fence, tenant.id), jobs: await jobCount() }).toEqual(before);
    });

    it("refuses a single upload of thousands of parts", async () => {
      const { body, contentType } = tinyPartsForm(5_000, "title");
      await expectRefusedNaming("form", () => fence.request("POST", "/v1/documents", { key: tenant.key, body, headers: { "content-type": contentType } }));
    });

    it("still accepts small batches, as JSON and as a form, reading the body once", async () => {
      const json = await post("/v1/documents/batch", { documents: [{ text: "One." }, { text: "Two.", source_id: "two" }] });
      expect(json.status).toBe(202);
      const form = new FormData();
      form.append("file", new File(["alpha"], "a.txt", { type: "text/plain" }));
      form.append("file", new File(["beta"], "b.txt", { type: "text/plain" }));
      const multipart = await fence.request("POST", "/v1/documents/batch", { key: tenant.key, body: form });
      expect(multipart.status).toBe(202);
      expect(((await multipart.json()) as BatchAcceptedJson).jobs).toHaveLength(2);
    });
  });

  describe("row 11: a file name becomes a bounded title", () => {
    it("cuts a 300,000-character file name to the 500-character title limit", async () => {
      const name = `${"n".repeat(300_000 - 4)}.txt`;
      const res = await uploadFile(fence, tenant.key, { name, type: "text/plain", content: "A short note." });
      expect(res.status).toBe(201);
      expect(((await res.json()) as IngestedDocumentJson).title).toBe("n".repeat(500));
    });

    it("cuts at a character boundary, in batches too", async () => {
      const form = new FormData();
      form.append("file", new File(["emoji"], `a${"😀".repeat(400)}.txt`, { type: "text/plain" }));
      const res = await fence.request("POST", "/v1/documents/batch", { key: tenant.key, body: form });
      expect(res.status).toBe(202);
      const [job] = ((await res.json()) as BatchAcceptedJson).jobs;
      expect(job!.title).toBe(`a${"😀".repeat(249)}`);
    });
  });
});
