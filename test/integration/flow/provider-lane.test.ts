import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitForCount } from "../../support/admission-helpers.js";
import { startFakeOpenAI, type FakeOpenAI } from "../../support/fake-openai.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { ledgerRows } from "../../support/metering-helpers.js";
import type { DocumentListJson } from "../../support/api-types.js";

const QUESTION = "How long is the warranty on the espresso machine?";
const chatRequests = (fake: FakeOpenAI) => fake.requests.filter((r) => r.path === "/v1/chat/completions").length;

describe.each(backends)("LLM provider lane and circuit breaker on $name", (backend) => {
  let fake: FakeOpenAI;
  let fence: TestFence;
  let tenant: TestTenant;
  const ask = (question = QUESTION) => fence.request("POST", "/v1/chat", { key: tenant.key, json: { question } });

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    fence = await TestFence.start(backend, {
      env: {
        LLM_BASE_URL: fake.url,
        LLM_MODEL: "lane-model",
        LLM_MAX_RETRIES: "0",
        LLM_BREAKER_FAILURES: "3",
        LLM_BREAKER_COOLDOWN_MS: "400",
        LLM_MAX_CONCURRENCY: "1",
      },
    });
    tenant = await fence.createTenant("lane", "enterprise");
    await fence.upload(tenant, { title: "Warranty", text: "The espresso machine carries a warranty of two years from purchase." });
  });
  afterAll(async () => {
    await fence?.close();
    await fake?.close();
  });

  it("opens after repeated provider failures, then answers 503 at once without calling the provider", async () => {
    fake.failNext("/v1/chat/completions", 500, 3);
    for (let i = 0; i < 3; i++) expect((await ask(`${QUESTION} (${i})`)).status).toBe(502);
    const before = chatRequests(fake);
    const res = await ask(`${QUESTION} (open)`);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await res.json()).toMatchObject({ error: { code: "provider_unavailable", details: { provider: "llm", reason: "circuit_open" } } });
    expect(chatRequests(fake)).toBe(before);
    // A refused call never reached the provider, so it is not on the ledger either.
    const failed = (await ledgerRows(fence, tenant, "chat")).filter((r) => r.status === "failed");
    expect(failed).toHaveLength(3);
  });

  it("keeps the rest of the service working while the LLM breaker is open (bulkhead)", async () => {
    const search = await fence.request("POST", "/v1/search", { key: tenant.key, json: { query: "espresso warranty" } });
    expect(search.status).toBe(200);
    const upload = await fence.request("POST", "/v1/documents", { key: tenant.key, json: { text: "Descale the machine monthly." } });
    expect(upload.status).toBe(201);
  });

  it("closes again after the cooldown once a probe succeeds", async () => {
    await new Promise((resolve) => setTimeout(resolve, 450));
    const probe = await ask(`${QUESTION} (probe)`);
    expect(probe.status).toBe(200);
    expect((await ask(`${QUESTION} (after)`)).status).toBe(200);
  });

  it("holds calls to the provider to its concurrency lane: the second waits for the first", async () => {
    const release = fake.holdChat();
    const before = chatRequests(fake);
    const first = ask(`${QUESTION} (lane 1)`);
    const second = ask(`${QUESTION} (lane 2)`);
    // Under a loaded machine the first call may take a while to reach the provider; once it has,
    // the second must stay held behind it.
    await waitForCount(() => chatRequests(fake) - before, 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(chatRequests(fake) - before).toBe(1);
    release();
    const statuses = (await Promise.all([first, second])).map((r) => r.status);
    expect(statuses).toEqual([200, 200]);
    expect(chatRequests(fake) - before).toBe(2);
  });
});

describe.each(backends)("embeddings provider lane and circuit breaker on $name", (backend) => {
  let fake: FakeOpenAI;
  let fence: TestFence;
  let tenant: TestTenant;
  const embeddingRequests = () => fake.requests.filter((r) => r.path === "/v1/embeddings").length;
  const upload = (n: number) =>
    fence.request("POST", "/v1/documents", { key: tenant.key, json: { title: `Note ${n}`, text: `Maintenance note number ${n}.` } });

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    fence = await TestFence.start(backend, {
      useConfiguredEmbeddings: true,
      env: { FENCE_EMBEDDINGS: "openai", EMBEDDINGS_BASE_URL: fake.url, EMBEDDINGS_MODEL: "lane-embed" },
    });
    tenant = await fence.createTenant("embed-lane", "enterprise");
  });
  afterAll(async () => {
    await fence?.close();
    await fake?.close();
  });

  it("opens after five failed embedding calls; the next upload is refused at once and nothing is stored", async () => {
    // The openai client retries each call twice itself: 3 failing attempts make one lane failure.
    fake.failNext("/v1/embeddings", 500, 15);
    for (let i = 0; i < 5; i++) expect((await upload(i)).status).toBe(502);
    const before = embeddingRequests();
    const refused = await upload(99);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: { code: "provider_unavailable", details: { provider: "embeddings" } } });
    expect(embeddingRequests()).toBe(before);
    const list = (await (await fence.request("GET", "/v1/documents", { key: tenant.key })).json()) as DocumentListJson;
    expect(list.documents).toHaveLength(0);
    const rows = await ledgerRows(fence, tenant, "embed_documents");
    expect(rows.filter((r) => r.status === "failed")).toHaveLength(5);
  });
});
