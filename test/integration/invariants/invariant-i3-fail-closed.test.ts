import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IsolationMutations } from "../../../src/db/database.js";
import { TenantScope, type Tx } from "../../../src/db/database.js";
import { chunks } from "../../../src/db/schema.js";
import { issueTenantContext } from "../../../src/core/tenant-context.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { captureHybridSearchSql, readJson, renderSql } from "../../support/isolation-helpers.js";
import type { ChatBody, DocumentListJson, SearchBody } from "../../support/api-types.js";

/**
 * Invariant I3: retrieval is fail-closed. Each of the two retrieval locks (row-level security and
 * the application's tenant predicate) holds alone: with either one switched off by an isolation
 * mutation, B's searches and chats over a database holding A's data still return nothing of A's.
 * (I4 shows that with both off the assertion still stops it, and with all three off A leaks, which
 * is what proves these tests can see a leak.)
 */
const A_SECRET = "PELICAN-9932";
const A_TEXT = `Project Kestrel launch codes: ${A_SECRET}. The kestrel rollout starts in the Oslo region.`;
const B_TEXT = "Project Kestrel is our internal name for the new onboarding checklist for hires.";
const QUERY = "Project Kestrel launch codes";

const singleLockRuns: { lock: string; mutations: IsolationMutations }[] = [
  { lock: "row-level security alone (application filter off)", mutations: { disableApplicationFilter: true } },
  { lock: "the application filter alone (row-level security off)", mutations: { disableRowLevelSecurity: true } },
];

describe.each(backends)("I3 fail-closed retrieval on $name", (backend) => {
  describe.each(singleLockRuns)("with $lock", ({ mutations }) => {
    let fence: TestFence;
    let a: TestTenant;
    let b: TestTenant;
    let aDocId: string;
    let bDocId: string;

    beforeAll(async () => {
      fence = await TestFence.start(backend, { mutations });
      a = await fence.createTenant("i3-a");
      b = await fence.createTenant("i3-b");
      aDocId = (await fence.upload(a, { title: "Kestrel codes", text: A_TEXT })).id;
      bDocId = (await fence.upload(b, { title: "Kestrel onboarding", text: B_TEXT })).id;
    });
    afterAll(() => fence?.close());

    it("B's search returns only B's chunks", async () => {
      const res = await readJson<SearchBody>(fence.request("POST", "/v1/search", { key: b.key, json: { query: QUERY, k: 50 } }));
      expect(res.status).toBe(200);
      expect(res.body.results.map((r) => r.document_id)).toEqual([bDocId]);
      expect(res.text).not.toContain(A_SECRET);
    });

    it("B's chat cites only B's document", async () => {
      const res = await readJson<ChatBody>(fence.request("POST", "/v1/chat", { key: b.key, json: { question: `What are the ${QUERY}?` } }));
      expect(res.status).toBe(200);
      expect(res.text).not.toContain(A_SECRET);
      expect(res.body.citations.map((c) => c.document_id)).not.toContain(aDocId);
    });

    it("B's document list and reads stay B's", async () => {
      const list = await readJson<DocumentListJson>(fence.request("GET", "/v1/documents", { key: b.key }));
      expect(list.body.documents.map((d) => d.id)).toEqual([bDocId]);
      expect((await fence.request("GET", `/v1/documents/${aDocId}`, { key: b.key })).status).toBe(404);
    });

    it("A still finds its own chunk (the data is there to leak)", async () => {
      const res = await readJson<SearchBody>(fence.request("POST", "/v1/search", { key: a.key, json: { query: QUERY, k: 50 } }));
      expect(res.body.results.map((r) => r.document_id)).toContain(aDocId);
      expect(res.text).toContain(A_SECRET);
    });
  });
});

describe("I3: the tenant predicate comes from the scope, never from a caller", () => {
  const ctx = issueTenantContext({
    tenantId: "5b0c2d0e-8a3f-4a51-9c1e-3f2a7d9e6b40",
    keyId: "0f8e1c2a-4b6d-4e8f-9a1b-2c3d4e5f6a7b",
    project: "default",
    environment: "prod", scopes: ["owner"],
    requestId: "i3-sql-0001",
  });
  const unusedTx = {} as Tx;

  it("TenantScope.owns() renders `tenant_id = $1` bound to the verified tenant id", () => {
    const rendered = renderSql(new TenantScope(unusedTx, ctx, {}).owns(chunks.tenantId));
    expect(rendered.sql).toBe('"chunks"."tenant_id" = $1');
    expect(rendered.params).toEqual([ctx.tenantId]);
  });

  it("the isolation mutation is what removes it (so the runs above really had it off)", () => {
    const rendered = renderSql(new TenantScope(unusedTx, ctx, { disableApplicationFilter: true }).owns(chunks.tenantId));
    expect(rendered.sql).toBe("true");
    expect(rendered.params).toEqual([]);
  });

  it("hybrid search filters every read of a tenant table by that predicate, bound to the context's tenant", async () => {
    const query = await captureHybridSearchSql(ctx, {
      text: "anything",
      vector: Array.from({ length: 4 }, () => 0.5),
      model: "local:use-lite-512",
      dimensions: 4,
      k: 5,
    });
    const rendered = renderSql(query);
    for (const table of ["chunks", "documents"]) {
      const reads = rendered.sql.match(new RegExp(`(?:FROM|JOIN)\\s+"${table}"`, "g")) ?? [];
      const predicates = [...rendered.sql.matchAll(new RegExp(`"${table}"\\."tenant_id" = \\$(\\d+)`, "g"))];
      expect(predicates.length, `tenant predicates on ${table}`).toBeGreaterThanOrEqual(reads.length);
      for (const [, index] of predicates) expect(rendered.params[Number(index) - 1]).toBe(ctx.tenantId);
      if (table === "chunks") expect(reads.length).toBeGreaterThan(0);
    }
    // No tenant id reaches the query except the context's.
    const uuids = rendered.params.filter((p) => typeof p === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-/.test(p));
    expect(new Set(uuids)).toEqual(new Set([ctx.tenantId]));
  });
});
