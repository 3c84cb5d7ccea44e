import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TenantIsolationError } from "../../../src/core/errors.js";
import { createLogger } from "../../../src/observability/logger.js";
import { SecurityEvents } from "../../../src/observability/security-events.js";
import { assembleContext } from "../../../src/retrieval/assemble-context.js";
import { assertChunksBelongTo } from "../../../src/retrieval/assert-chunks-belong-to.js";
import type { SearchHit } from "../../../src/retrieval/hybrid-search.js";
import { issueTenantContext } from "../../../src/core/tenant-context.js";
import type { IsolationMutations } from "../../../src/db/database.js";
import { backends, TestFence, type Backend, type TestTenant } from "../../support/harness.js";
import { scratchDatabase } from "../../support/scratch-database.js";
import { readJson } from "../../support/isolation-helpers.js";
import type { ErrorBody, SearchBody } from "../../support/api-types.js";

/**
 * Invariant I4: before any chunk reaches a prompt or a response, each chunk's tenant is checked
 * against the request's. With both retrieval locks switched off (RLS and the application filter),
 * the assertion alone turns the leak into a 500 `tenant_isolation_violation` and a security event;
 * with the assertion switched off too, A's text does reach B, which proves it was the assertion.
 */
const TENANT_A = "9d3f7a10-2b4c-4d5e-8f60-718293a4b5c6";
const TENANT_B = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";

function hit(tenantId: string, n: number): SearchHit {
  return {
    chunkId: `00000000-0000-4000-8000-00000000000${n}`,
    tenantId,
    documentId: "00000000-0000-4000-8000-0000000000d0",
    position: n,
    heading: null,
    text: `passage ${n}`,
    title: "doc",
    score: 1 / (60 + n),
    similarity: 0.9,
    textMatch: true,
  };
}

describe("I4 assembly assertion (unit)", () => {
  const ctxB = issueTenantContext({ tenantId: TENANT_B, keyId: TENANT_B, project: "p", environment: "prod", scopes: ["owner"], requestId: "i4-unit-0001" });
  const options = { minRelevance: 0.25, maxPassages: 6, maxChars: 6000 };

  it("assertChunksBelongTo throws TenantIsolationError on one foreign chunk among own ones, and counts it", () => {
    const events = new SecurityEvents(createLogger("silent"));
    expect(() => assertChunksBelongTo(ctxB, [hit(TENANT_B, 1), hit(TENANT_A, 2)], events)).toThrow(TenantIsolationError);
    expect(events.count("assembly_assertion_failed")).toBe(1);
  });

  it("assembleContext refuses to assemble a prompt with a foreign chunk, and counts it", () => {
    const events = new SecurityEvents(createLogger("silent"));
    expect(() => assembleContext(ctxB, [hit(TENANT_A, 1)], events, options)).toThrow(TenantIsolationError);
    expect(events.count("assembly_assertion_failed")).toBe(1);
  });

  it("checks every chunk it is given, even ones it would drop as irrelevant or over budget", () => {
    const events = new SecurityEvents(createLogger("silent"));
    const irrelevantForeign = { ...hit(TENANT_A, 9), similarity: 0, textMatch: false };
    const hits = [...[1, 2, 3, 4, 5, 6, 7].map((n) => hit(TENANT_B, n)), irrelevantForeign];
    expect(() => assembleContext(ctxB, hits, events, { ...options, maxPassages: 2 })).toThrow(TenantIsolationError);
    expect(events.count("assembly_assertion_failed")).toBe(1);
  });

  it("passes the tenant's own chunks through untouched, with no event", () => {
    const events = new SecurityEvents(createLogger("silent"));
    const own = [hit(TENANT_B, 1), hit(TENANT_B, 2)];
    expect(assertChunksBelongTo(ctxB, own, events)).toEqual(own);
    expect(assembleContext(ctxB, own, events, options).map((p) => p.chunkId)).toEqual(own.map((h) => h.chunkId));
    expect(events.count("assembly_assertion_failed")).toBe(0);
  });
});

const A_SECRET = "MARMOT-6120";
const A_TEXT = `Quillfeather payroll override password is ${A_SECRET}. Quillfeather payroll runs on the 25th.`;
const B_TEXT = "Quillfeather is the name of our payroll provider; questions go to the HR mailbox.";
const QUERY = "Quillfeather payroll override password";

/**
 * With RLS and the application filter both off, every query loses its tenant filter — the read of
 * the tenant's own row and budget counters too, which then see every tenant in the database. On a
 * database other suites share, that could be any tenant's plan and usage (a test plan of 10 tokens
 * a day refused an upload here), so on a server backend these instances get a database of their own.
 */
async function startWithoutLocks(backend: Backend, mutations: IsolationMutations): Promise<{ fence: TestFence; close(): Promise<void> }> {
  const scratch = backend.databaseUrl ? await scratchDatabase(backend.databaseUrl) : undefined;
  const fence = await TestFence.start(scratch ? { ...backend, databaseUrl: scratch.url } : backend, { mutations });
  return {
    fence,
    close: async () => {
      await fence.close();
      await scratch?.drop();
    },
  };
}

describe.each(backends)("I4 assembly assertion end to end on $name", (backend) => {
  describe("with RLS and the application filter both off, assertion on", () => {
    let fence: TestFence;
    let close: (() => Promise<void>) | undefined;
    let b: TestTenant;

    beforeAll(async () => {
      ({ fence, close } = await startWithoutLocks(backend, { disableRowLevelSecurity: true, disableApplicationFilter: true }));
      const a = await fence.createTenant("i4-a");
      b = await fence.createTenant("i4-b");
      await fence.upload(a, { title: "Payroll override", text: A_TEXT });
      await fence.upload(b, { title: "Payroll provider", text: B_TEXT });
    });
    afterAll(() => close?.());

    const failures = () => fence.fence.securityEvents.count("assembly_assertion_failed");

    it("B's search answers 500 tenant_isolation_violation without A's text, and counts a security event", async () => {
      const before = failures();
      const res = await readJson<ErrorBody>(fence.request("POST", "/v1/search", { key: b.key, json: { query: QUERY, k: 50 } }));
      expect(res.status).toBe(500);
      expect(res.body.error.code).toBe("tenant_isolation_violation");
      expect(res.text).not.toContain(A_SECRET);
      expect(res.text).not.toContain("Quillfeather payroll runs");
      expect(failures()).toBe(before + 1);
    });

    it("B's chat answers 500 tenant_isolation_violation without A's text, and counts a security event", async () => {
      const before = failures();
      const res = await readJson<ErrorBody>(fence.request("POST", "/v1/chat", { key: b.key, json: { question: `What is the ${QUERY}?` } }));
      expect(res.status).toBe(500);
      expect(res.body.error.code).toBe("tenant_isolation_violation");
      expect(res.text).not.toContain(A_SECRET);
      expect(failures()).toBe(before + 1);
    });

    it("B's streamed chat fails closed the same way: a 500 before the event stream opens", async () => {
      const before = failures();
      const res = await fence.request("POST", "/v1/chat", { key: b.key, json: { question: `What is the ${QUERY}?`, stream: true } });
      expect(res.status).toBe(500);
      expect(res.headers.get("content-type")).toMatch(/application\/json/);
      const text = await res.text();
      expect(text).not.toContain(A_SECRET);
      expect(text).not.toContain("event: token");
      expect(text).toContain("tenant_isolation_violation");
      expect(failures()).toBe(before + 1);
    });
  });

  describe("with all three locks off (control)", () => {
    let fence: TestFence;
    let close: (() => Promise<void>) | undefined;
    let b: TestTenant;

    beforeAll(async () => {
      ({ fence, close } = await startWithoutLocks(backend, { disableRowLevelSecurity: true, disableApplicationFilter: true, disableAssemblyAssertion: true }));
      const a = await fence.createTenant("i4-control-a");
      b = await fence.createTenant("i4-control-b");
      await fence.upload(a, { title: "Payroll override", text: A_TEXT });
      await fence.upload(b, { title: "Payroll provider", text: B_TEXT });
    });
    afterAll(() => close?.());

    it("B's search DOES return A's text: the assertion is what blocked it above", async () => {
      const res = await readJson<SearchBody>(fence.request("POST", "/v1/search", { key: b.key, json: { query: QUERY, k: 50 } }));
      expect(res.status).toBe(200);
      expect(res.body.results.some((r) => r.text.includes(A_SECRET))).toBe(true);
      expect(fence.fence.securityEvents.count("assembly_assertion_failed")).toBe(0);
    });
  });
});
