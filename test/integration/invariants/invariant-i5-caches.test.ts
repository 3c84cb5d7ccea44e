import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TenantCache } from "../../../src/cache/tenant-caches.js";
import type { TenantContext } from "../../../src/core/tenant-context.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { contextFor, readJson } from "../../support/isolation-helpers.js";
import type { ChatBody } from "../../support/api-types.js";

/**
 * Invariant I5: every cache key carries the tenant id (and the model), response caches also the
 * tenant's data version. So B never gets A's cached answer, A's answer is recomputed as soon as
 * A's documents change, and purging a tenant drops its entries.
 */
const A_SECRET = "OCELOT-5508";
const A_TEXT = `The Harbourview office alarm code is ${A_SECRET}. The alarm must be set by the last person to leave.`;
const B_TEXT = "Harbourview is the name of our quarterly newsletter, edited by the communications team.";
const QUESTION = "What is the Harbourview office alarm code?";

describe.each(backends)("I5 caches on $name", (backend) => {
  let fence: TestFence;
  let a: TestTenant;
  let b: TestTenant;

  beforeAll(async () => {
    fence = await TestFence.start(backend);
    a = await fence.createTenant("i5-a");
    b = await fence.createTenant("i5-b");
    await fence.upload(a, { title: "Alarm", text: A_TEXT });
    await fence.upload(b, { title: "Newsletter", text: B_TEXT });
  });
  afterAll(() => fence?.close());

  const ask = (tenant: TestTenant, question = QUESTION) =>
    readJson<ChatBody>(fence.request("POST", "/v1/chat", { key: tenant.key, json: { question } }));

  it("never serves A's cached answer to B, and caches A's answer for A", async () => {
    const first = await ask(a);
    expect(first.status).toBe(200);
    expect(first.body.cached).toBe(false);
    expect(first.body.answer).toContain(A_SECRET);

    const fromB = await ask(b);
    expect(fromB.status).toBe(200);
    expect(fromB.body.cached).toBe(false);
    expect(fromB.text).not.toContain(A_SECRET);

    const again = await ask(a);
    expect(again.body.cached).toBe(true);
    expect(again.body.answer).toBe(first.body.answer);

    // B's own answer is cached for B, and is still not A's.
    const bAgain = await ask(b);
    expect(bAgain.body.cached).toBe(true);
    expect(bAgain.text).not.toContain(A_SECRET);
  });

  it("recomputes A's answer after A uploads a document (data version changed)", async () => {
    expect((await ask(a)).body.cached).toBe(true);
    await fence.upload(a, { title: "Parking", text: "Visitors park in bay 7 behind the Harbourview office." });
    const after = await ask(a);
    expect(after.body.cached).toBe(false);
    expect((await ask(a)).body.cached).toBe(true);
    // Another tenant's change does not invalidate A's entry.
    await fence.upload(b, { title: "Lunch", text: "Lunch is served at noon in the canteen." });
    expect((await ask(a)).body.cached).toBe(true);
  });

  it("recomputes A's answer after A deletes a document, and the answer no longer cites it", async () => {
    const before = await ask(a);
    expect(before.body.cached).toBe(true);
    const cited = before.body.citations.map((c) => c.document_id);
    expect(cited.length).toBeGreaterThan(0);
    for (const id of new Set(cited)) {
      expect((await fence.request("DELETE", `/v1/documents/${id}`, { key: a.key })).status).toBe(204);
    }
    const after = await ask(a);
    expect(after.body.cached).toBe(false);
    expect(after.body.answer).not.toContain(A_SECRET);
    expect(after.body.citations.map((c) => c.document_id).filter((id) => cited.includes(id))).toEqual([]);
  });

  it("keys start with the tenant id and differ for two tenants with equal parts", async () => {
    const ctxA = await contextFor(fence, a);
    const ctxB = await contextFor(fence, b);
    const parts = { model: "m", dataVersion: 3, input: QUESTION };
    const keyA = TenantCache.keyFor(ctxA, parts);
    const keyB = TenantCache.keyFor(ctxB, parts);
    expect(keyA?.startsWith(`${a.id}|`)).toBe(true);
    expect(keyB?.startsWith(`${b.id}|`)).toBe(true);
    expect(keyA).not.toBe(keyB);
    // The model and the data version are part of the key too; the raw input is not.
    expect(TenantCache.keyFor(ctxA, { ...parts, model: "other" })).not.toBe(keyA);
    expect(TenantCache.keyFor(ctxA, { ...parts, dataVersion: 4 })).not.toBe(keyA);
    expect(keyA).not.toContain(QUESTION);
    // A forged context cannot produce (or probe) another tenant's key.
    expect(() => TenantCache.keyFor({ ...ctxB, tenantId: a.id } as TenantContext, parts)).toThrow(/verified TenantContext/);
  });

  it("drops a tenant's entries when the admin deletes the tenant", async () => {
    const c = await fence.createTenant("i5-c");
    await fence.upload(c, { title: "Doomed", text: "The C tenant keeps its archive in the basement." });
    const { caches } = fence.fence;
    await ask(c, "Where is the archive?");
    await ask(c, "Who keeps the archive?");
    const answersBefore = caches.answers.size;
    const embeddingsBefore = caches.queryEmbeddings.size;

    expect((await fence.admin("DELETE", `/tenants/${c.id}`)).status).toBe(204);
    expect(caches.answers.size).toBe(answersBefore - 2);
    expect(caches.queryEmbeddings.size).toBe(embeddingsBefore - 2);
    // Other tenants' entries survive.
    expect((await ask(a)).body.cached).toBe(true);
  });
});
