import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import type { ChatBody, SearchBody } from "../../support/api-types.js";

describe.each(backends)("walkthrough on $name", (backend) => {
  let fence: TestFence;
  let tenant: TestTenant;

  beforeAll(async () => {
    fence = await TestFence.start(backend);
    tenant = await fence.createTenant("acme");
  });
  afterAll(() => fence?.close());

  it("uploads a document, finds it by meaning and answers with a citation", async () => {
    const doc = await fence.upload(tenant, {
      title: "Refund policy",
      text: "# Refunds\n\nCustomers can request a refund within 30 days of purchase.\n\n# Shipping\n\nExpress shipping takes 2 days.",
    });
    expect(doc.chunk_count).toBe(2);

    const search = await fence.request("POST", "/v1/search", { key: tenant.key, json: { query: "money back period" } });
    expect(search.status).toBe(200);
    const { results } = (await search.json()) as SearchBody;
    expect(results[0]).toMatchObject({ document_id: doc.id, heading: "Refunds" });

    const chat = await fence.request("POST", "/v1/chat", { key: tenant.key, json: { question: "How many days do I have to ask for a refund?" } });
    expect(chat.status).toBe(200);
    const answer = (await chat.json()) as ChatBody;
    expect(answer.mode).toBe("extractive");
    expect(answer.answer).toContain("30 days");
    expect(answer.citations[0]?.document_id).toBe(doc.id);
  });
});
