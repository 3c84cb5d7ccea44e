import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../../src/db/database.js";
import { DocumentStore } from "../../../src/ingest/document-store.js";
import type { TenantContext } from "../../../src/core/tenant-context.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { contextFor, readJson } from "../../support/isolation-helpers.js";
import type { ChatBody, DocumentListJson, IngestedDocumentJson, SearchBody } from "../../support/api-types.js";

/**
 * Invariant I1: the tenant comes only from the verified credential. B's key with A's tenant id in
 * the body, the query string or a header still reaches only B's data; query and header attempts are
 * reported as security events; a hand-made TenantContext cannot open a tenant transaction.
 */
const A_SECRET = "ZEBRA-4471";
const A_TEXT = `The vault combination for Ajax Corp is ${A_SECRET}. Only the finance director may open the vault.`;
const B_TEXT = "Borealis keeps the spare office keys and the vault key in the blue lockbox at reception.";
const QUESTION = "What is the vault combination?";

describe.each(backends)("I1 identity on $name", (backend) => {
  let fence: TestFence;
  let a: TestTenant;
  let b: TestTenant;
  let aDocId: string;
  let bDocId: string;
  /** Every document B owns (the smuggling upload below adds one). */
  const bDocIds = new Set<string>();

  beforeAll(async () => {
    fence = await TestFence.start(backend);
    a = await fence.createTenant("i1-ajax");
    b = await fence.createTenant("i1-borealis");
    aDocId = (await fence.upload(a, { title: "Vault", text: A_TEXT })).id;
    bDocId = (await fence.upload(b, { title: "Keys", text: B_TEXT })).id;
    bDocIds.add(bDocId);
  });
  afterAll(() => fence?.close());

  const smuggled = () => fence.fence.securityEvents.count("smuggled_tenant_id");

  /** B's search results: non-empty, all B's, none of A's text. */
  function expectOnlyB(body: SearchBody) {
    expect(body.results.length).toBeGreaterThan(0);
    for (const r of body.results) {
      expect(bDocIds.has(r.document_id)).toBe(true);
      expect(r.text).not.toContain(A_SECRET);
    }
  }

  it("ignores tenant_id in a search body, and reports it as a security event", async () => {
    const before = smuggled();
    const res = await readJson<SearchBody>(
      fence.request("POST", "/v1/search", { key: b.key, json: { query: QUESTION, k: 10, tenant_id: a.id } }),
    );
    expect(res.status).toBe(200);
    expectOnlyB(res.body);
    expect(res.text).not.toContain(A_SECRET);
    expect(smuggled()).toBe(before + 1);
  });

  it("ignores tenant_id in a chat body", async () => {
    const res = await readJson<ChatBody>(
      fence.request("POST", "/v1/chat", { key: b.key, json: { question: QUESTION, tenant_id: a.id } }),
    );
    expect(res.status).toBe(200);
    expect(res.text).not.toContain(A_SECRET);
    expect(res.body.citations.every((c) => bDocIds.has(c.document_id))).toBe(true);
  });

  it("stores an upload with tenant_id in the body under the caller's tenant", async () => {
    const res = await readJson<IngestedDocumentJson>(
      fence.request("POST", "/v1/documents", { key: b.key, json: { title: "Smuggled", text: "Lunch is served at noon.", tenant_id: a.id } }),
    );
    expect(res.status).toBe(201);
    bDocIds.add(res.body.id);
    expect((await fence.request("GET", `/v1/documents/${res.body.id}`, { key: b.key })).status).toBe(200);
    expect((await fence.request("GET", `/v1/documents/${res.body.id}`, { key: a.key })).status).toBe(404);
    const [row] = await fence.fence.db.asOwner((tx) =>
      queryRows<{ tenant_id: string }>(tx, sql`SELECT tenant_id FROM documents WHERE id = ${res.body.id}`),
    );
    expect(row!.tenant_id).toBe(b.id);
  });

  it("stores a large upload (its body parsed on a thread) with tenant_id under the caller's tenant, and reports it", async () => {
    const before = smuggled();
    // Over 64 KiB: the body is decoded and parsed off the event loop (request-body.ts), not by Hono.
    // Mostly blank lines, which the chunker drops: the body is large, its embedding work one chunk
    // (100 KB of prose took 30-47 s per backend on the real model, for nothing this test checks).
    const text = `Lunch is served at noon on the terrace.${"\n".repeat(70_000)}The menu changes weekly.`;
    const res = await readJson<IngestedDocumentJson>(
      fence.request("POST", "/v1/documents", { key: b.key, json: { title: "Smuggled, large", text, tenant_id: a.id } }),
    );
    expect(res.status).toBe(201);
    bDocIds.add(res.body.id);
    const [row] = await fence.fence.db.asOwner((tx) =>
      queryRows<{ tenant_id: string; first: string }>(
        tx,
        // Joined on the tenant too: on Citus a query across tenants joins shards only by their tenant.
        sql`SELECT d.tenant_id, c.text AS first FROM documents d JOIN chunks c ON c.tenant_id = d.tenant_id AND c.document_id = d.id
            WHERE d.id = ${res.body.id} ORDER BY c.position LIMIT 1`,
      ),
    );
    expect(row!.tenant_id).toBe(b.id);
    expect(row!.first).toContain("Lunch is served at noon on the terrace.");
    expect(smuggled()).toBe(before + 1);
  });

  it("ignores ?tenant_id= and reports it as a security event", async () => {
    const before = smuggled();
    const search = await readJson<SearchBody>(
      fence.request("POST", `/v1/search?tenant_id=${a.id}`, { key: b.key, json: { query: QUESTION, k: 10 } }),
    );
    expect(search.status).toBe(200);
    expectOnlyB(search.body);
    expect(smuggled()).toBe(before + 1);

    const list = await readJson<DocumentListJson>(
      fence.request("GET", `/v1/documents?tenant_id=${a.id}`, { key: b.key }),
    );
    expect(list.status).toBe(200);
    expect(list.body.documents.map((d) => d.id)).not.toContain(aDocId);
    expect(list.body.documents.map((d) => d.id)).toContain(bDocId);
    expect(smuggled()).toBe(before + 2);
  });

  it("ignores an x-tenant-id header and reports it as a security event", async () => {
    const before = smuggled();
    const search = await readJson<SearchBody>(
      fence.request("POST", "/v1/search", { key: b.key, json: { query: QUESTION, k: 10 }, headers: { "x-tenant-id": a.id } }),
    );
    expect(search.status).toBe(200);
    expectOnlyB(search.body);
    expect(smuggled()).toBe(before + 1);

    const get = await fence.request("GET", `/v1/documents/${aDocId}`, { key: b.key, headers: { "x-tenant-id": a.id } });
    expect(get.status).toBe(404);
    expect(smuggled()).toBe(before + 2);
  });

  it("does not report honest requests", async () => {
    const before = smuggled();
    expect((await fence.request("POST", "/v1/search", { key: b.key, json: { query: QUESTION } })).status).toBe(200);
    expect(smuggled()).toBe(before);
  });

  describe("a forged TenantContext is refused at run time", () => {
    let real: TenantContext;
    let forgedFields: TenantContext;
    let forgedCopy: TenantContext;

    beforeAll(async () => {
      real = await contextFor(fence, b);
      // What a bug or an attacker could write: a literal cast, or a real context with the id swapped.
      forgedFields = { tenantId: a.id, keyId: b.keyId, project: "default", environment: "prod", requestId: "forged-0001" } as unknown as TenantContext;
      forgedCopy = { ...real, tenantId: a.id } as TenantContext;
    });

    it("by db.withTenant, before any query runs", async () => {
      for (const forged of [forgedFields, forgedCopy]) {
        let ran = false;
        await expect(
          fence.fence.db.withTenant(forged, async () => {
            ran = true;
          }),
        ).rejects.toThrow(/verified TenantContext/);
        expect(ran).toBe(false);
      }
      // The genuine context works, so the refusal is about the forgery.
      await expect(fence.fence.db.withTenant(real, async (scope) => scope.tenantId)).resolves.toBe(b.id);
    });

    it("by Retriever.search", async () => {
      const retriever = fence.fence.retriever;
      for (const forged of [forgedFields, forgedCopy]) {
        await expect(retriever.search(forged, QUESTION, 5)).rejects.toThrow(/verified TenantContext/);
      }
      const hits = await retriever.search(real, QUESTION, 5);
      expect(hits.map((h) => h.documentId)).toContain(bDocId);
    });

    it("by DocumentStore.get, even for the forged tenant's own document", async () => {
      const store = new DocumentStore(fence.fence.db);
      for (const forged of [forgedFields, forgedCopy]) {
        await expect(store.get(forged, aDocId)).rejects.toThrow(/verified TenantContext/);
      }
    });

    it("and an issued context cannot be re-pointed at another tenant", () => {
      expect(() => {
        (real as { tenantId: string }).tenantId = a.id;
      }).toThrow(TypeError);
      expect(real.tenantId).toBe(b.id);
    });
  });
});
