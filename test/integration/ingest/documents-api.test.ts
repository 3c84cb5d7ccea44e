import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countDocumentChunks, countTenantRows, expectError, search } from "../../support/api-contract.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import type { DocumentJson, DocumentListJson, IngestedDocumentJson } from "../../support/api-types.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DOCUMENT_FIELDS = [
  "byte_size", "chunk_count", "created_at", "embedding_model", "id", "media_type", "metadata",
  "source_id", "status", "title", "updated_at", "version",
];

describe.each(backends)("documents API on $name", (backend) => {
  let fence: TestFence;

  beforeAll(async () => {
    fence = await TestFence.start(backend);
  });
  afterAll(() => fence?.close());

  async function post(tenant: TestTenant, json: unknown) {
    const res = await fence.request("POST", "/v1/documents", { key: tenant.key, json });
    return { res, body: (await res.json()) as IngestedDocumentJson };
  }

  it("creates a document from JSON with the documented snake_case shape and reads it back", async () => {
    const tenant = await fence.createTenant();
    const text = "# Warranty\n\nEvery kettle carries a two-year warranty against defects.";
    const { res, body } = await post(tenant, { title: "Kettle warranty", text, metadata: { lang: "en", tags: ["a", "b"], n: 3, nested: { ok: true } } });

    expect(res.status).toBe(201);
    expect(Object.keys(body).sort()).toEqual([...DOCUMENT_FIELDS, "outcome"].sort());
    expect(body).toMatchObject({
      title: "Kettle warranty",
      source_id: null,
      media_type: "text/markdown",
      status: "ready",
      chunk_count: 1,
      byte_size: Buffer.byteLength(text),
      version: 1,
      embedding_model: fence.fence.embeddings.model,
      metadata: { lang: "en", tags: ["a", "b"], n: 3, nested: { ok: true } },
      outcome: "created",
    });
    expect(body.id).toMatch(UUID);
    expect(new Date(body.created_at).toISOString()).toBe(body.created_at);
    expect(body.updated_at).toBe(body.created_at);

    const got = await fence.request("GET", `/v1/documents/${body.id}`, { key: tenant.key });
    expect(got.status).toBe(200);
    const read = (await got.json()) as DocumentJson;
    expect(Object.keys(read).sort()).toEqual(DOCUMENT_FIELDS);
    const { outcome: _outcome, ...withoutOutcome } = body;
    expect(read).toEqual(withoutOutcome);
  });

  it("derives the title from the first line when none is given", async () => {
    const tenant = await fence.createTenant();
    const { body } = await post(tenant, { text: "\n\n## Returns and exchanges  \nItems can be exchanged within 14 days." });
    expect(body.title).toBe("Returns and exchanges");
    expect(body.metadata).toEqual({});

    const long = "x".repeat(300);
    const { body: longBody } = await post(tenant, { text: `${long}\nsecond line` });
    expect(longBody.title).toBe(`${"x".repeat(117)}...`);
  });

  it.each([
    ["title", { title: "a\u0000b", text: "ok" }],
    ["source_id", { source_id: "s\u0000", text: "ok" }],
    ["a metadata value", { metadata: { note: "x\u0000y" }, text: "ok" }],
    ["a metadata key", { metadata: { "k\u0000": 1 }, text: "ok" }],
    ["an unpaired surrogate in metadata", { metadata: { note: "\ud800" }, text: "ok" }],
  ])("refuses text Postgres cannot store in %s with 400, storing nothing", async (_label, json) => {
    const tenant = await fence.createTenant();
    await expectError(await fence.request("POST", "/v1/documents", { key: tenant.key, json }), 400, "validation_error");
    expect(await countTenantRows(fence, tenant.id)).toMatchObject({ documents: 0, chunks: 0 });
  });

  it("strips NUL bytes from the text, and from a title derived from it", async () => {
    const tenant = await fence.createTenant();
    const { res, body } = await post(tenant, { text: "\u0000Tide\u0000 tables\nHigh water at 06:12.", metadata: { escaped: "\\u0000 is fine as text" } });
    expect(res.status).toBe(201);
    expect(body.title).toBe("Tide tables");
    expect(body.metadata).toEqual({ escaped: "\\u0000 is fine as text" });
    expect((await search(fence, tenant.key, "high water tide"))[0]?.text).toBe("Tide tables\nHigh water at 06:12.");
  });

  it("lists documents newest first across cursor pages with no duplicates or gaps", async () => {
    const tenant = await fence.createTenant();
    const uploaded: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const { body } = await post(tenant, { title: `Doc ${i}`, text: `Document number ${i} talks about topic ${i}.` });
      uploaded.push(body.id);
    }

    const seen: string[] = [];
    const pageSizes: number[] = [];
    let cursor: string | null = null;
    for (let pageNo = 0; pageNo < 10; pageNo++) {
      const query: string = cursor ? `?limit=2&cursor=${encodeURIComponent(cursor)}` : "?limit=2";
      const res = await fence.request("GET", `/v1/documents${query}`, { key: tenant.key });
      expect(res.status).toBe(200);
      const page = (await res.json()) as DocumentListJson;
      pageSizes.push(page.documents.length);
      for (const doc of page.documents) expect(Object.keys(doc).sort()).toEqual(DOCUMENT_FIELDS);
      seen.push(...page.documents.map((d) => d.id));
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    expect(pageSizes).toEqual([2, 2, 1]);
    expect(seen).toEqual([...uploaded].reverse());
    expect(new Set(seen).size).toBe(5);

    const all = await fence.request("GET", "/v1/documents", { key: tenant.key });
    const allBody = (await all.json()) as DocumentListJson;
    expect(allBody.documents.map((d) => d.id)).toEqual([...uploaded].reverse());
    expect(allBody.next_cursor).toBeNull();
  });

  it.each([
    ["not base64 json", "!!!not-a-cursor!!!"],
    ["valid base64 of junk", Buffer.from("hello").toString("base64url")],
    ["json with a non-uuid id", Buffer.from(JSON.stringify(["2024-01-01T00:00:00.000Z", "nope"])).toString("base64url")],
    ["json with a bad date", Buffer.from(JSON.stringify(["yesterday", "00000000-0000-4000-8000-000000000000"])).toString("base64url")],
  ])("rejects a bad cursor (%s) with 400", async (_label, cursor) => {
    const tenant = await fence.createTenant();
    const res = await fence.request("GET", `/v1/documents?limit=2&cursor=${encodeURIComponent(cursor)}`, { key: tenant.key });
    await expectError(res, 400, "validation_error");
  });

  it("deletes a document: 204, then 404 on read and delete, and its chunks leave search and storage", async () => {
    const tenant = await fence.createTenant();
    const { body: keep } = await post(tenant, { title: "Ferns", text: "Ferns reproduce using spores rather than seeds." });
    const { body: gone } = await post(tenant, { title: "Volcanoes", text: "Basalt lava flows from shield volcanoes in Hawaii." });
    expect((await search(fence, tenant.key, "shield volcano lava")).map((r) => r.document_id)).toContain(gone.id);

    const del = await fence.request("DELETE", `/v1/documents/${gone.id}`, { key: tenant.key });
    expect(del.status).toBe(204);
    expect(await del.text()).toBe("");
    await expectError(await fence.request("GET", `/v1/documents/${gone.id}`, { key: tenant.key }), 404, "not_found");
    await expectError(await fence.request("DELETE", `/v1/documents/${gone.id}`, { key: tenant.key }), 404, "not_found");

    const results = await search(fence, tenant.key, "shield volcano lava");
    expect(results.map((r) => r.document_id)).not.toContain(gone.id);
    expect(results.map((r) => r.document_id)).toContain(keep.id);
    expect(await countDocumentChunks(fence, gone.id)).toBe(0);
    expect(await countTenantRows(fence, tenant.id)).toMatchObject({ documents: 1, chunks: keep.chunk_count });
  });

  it("answers 404 for a missing id, a non-UUID id and another tenant's id alike", async () => {
    const owner = await fence.createTenant();
    const stranger = await fence.createTenant();
    const { body } = await post(owner, { text: "Owner-only content about lighthouses." });
    const bodies = [];
    for (const id of ["00000000-0000-4000-8000-000000000000", "not-a-uuid", body.id]) {
      bodies.push(await expectError(await fence.request("GET", `/v1/documents/${id}`, { key: stranger.key }), 404, "not_found"));
      await expectError(await fence.request("DELETE", `/v1/documents/${id}`, { key: stranger.key }), 404, "not_found");
    }
    expect(new Set(bodies.map((b) => b.error.message)).size).toBe(1);
    expect(await countTenantRows(fence, owner.id)).toMatchObject({ documents: 1 });
  });

  it("re-uploading identical content for a source_id is a no-op: 200 unchanged, same id, same chunks", async () => {
    const tenant = await fence.createTenant();
    const doc = { title: "Handbook", source_id: "wiki/handbook", text: "# Leave\n\nStaff get 25 days of leave.\n\n# Pay\n\nPay day is the 28th." };
    const { res: first, body: created } = await post(tenant, doc);
    expect(first.status).toBe(201);
    const chunksBefore = await countDocumentChunks(fence, created.id);
    expect(chunksBefore).toBe(created.chunk_count);
    expect(chunksBefore).toBe(2);

    const { res: again, body: unchanged } = await post(tenant, doc);
    expect(again.status).toBe(200);
    expect(unchanged).toMatchObject({ id: created.id, outcome: "unchanged", version: 1, source_id: "wiki/handbook" });
    expect(unchanged.updated_at).toBe(created.updated_at);
    expect(await countDocumentChunks(fence, created.id)).toBe(chunksBefore);
    expect(await countTenantRows(fence, tenant.id)).toMatchObject({ documents: 1, chunks: chunksBefore });
  });

  it("new content for a source_id replaces the old version atomically: 200 replaced, version 2", async () => {
    const tenant = await fence.createTenant();
    const v1 = { title: "Office", source_id: "office-hours", text: "The office opens at seven o'clock, on Saturdays only, near the zebra enclosure." };
    const { body: created } = await post(tenant, v1);
    expect((await search(fence, tenant.key, "zebra enclosure")).some((r) => r.text.includes("zebra"))).toBe(true);

    const v2 = { ...v1, text: "The office opens at nine o'clock on weekdays, beside the flamingo pond.", metadata: { rev: 2 } };
    const { res, body: replaced } = await post(tenant, v2);
    expect(res.status).toBe(200);
    expect(replaced).toMatchObject({ id: created.id, outcome: "replaced", version: 2, metadata: { rev: 2 }, source_id: "office-hours" });
    expect(replaced.created_at).toBe(created.created_at);
    expect(new Date(replaced.updated_at).getTime()).toBeGreaterThan(new Date(created.updated_at).getTime());

    const results = await search(fence, tenant.key, "zebra enclosure");
    expect(results.some((r) => r.text.includes("zebra"))).toBe(false);
    const fresh = await search(fence, tenant.key, "flamingo pond");
    expect(fresh[0]).toMatchObject({ document_id: created.id });
    expect(fresh[0]!.text).toContain("flamingo");
    expect(await countTenantRows(fence, tenant.id)).toMatchObject({ documents: 1, chunks: replaced.chunk_count });

    const read = (await (await fence.request("GET", `/v1/documents/${created.id}`, { key: tenant.key })).json()) as DocumentJson;
    expect(read).toMatchObject({ version: 2, metadata: { rev: 2 } });
  });

  it("keeps the same source_id apart between tenants", async () => {
    const a = await fence.createTenant();
    const b = await fence.createTenant();
    const { body: docA } = await post(a, { source_id: "shared-name", text: "Tenant A writes about apples." });
    const { res, body: docB } = await post(b, { source_id: "shared-name", text: "Tenant B writes about bananas." });
    expect(res.status).toBe(201);
    expect(docB.outcome).toBe("created");
    expect(docB.id).not.toBe(docA.id);
  });
});
