import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queryRows } from "../../../src/db/database.js";
import { vectorIndexName } from "../../../src/db/vector-index.js";
import { startFakeOpenAI, type FakeOpenAI } from "../../support/fake-openai.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { readJson } from "../../support/isolation-helpers.js";
import type { ChatBody, IngestedDocumentJson, SearchBody } from "../../support/api-types.js";

/**
 * FENCE_EMBEDDINGS=openai against the local fake: the dimension is probed, chunks record the
 * provider's model id, search works end to end. Then a second instance on the SAME database with
 * the local model: each instance compares only vectors of its own active model, so neither
 * returns the other's chunks. PGlite shares the database through an on-disk data folder (opened
 * by one instance at a time); Postgres through the shared test database.
 */
const OPENAI_MODEL = "openai:fake-embed";
const OPENAI_DOC = "Heron station maintenance happens every Thursday night at the north depot.";
const LOCAL_DOC = "Heron station cafeteria serves vegetarian lunch on Fridays near the south gate.";

describe.each(backends)("OpenAI-compatible embeddings on $name", (backend) => {
  let fake: FakeOpenAI;
  let dataDir: string | undefined;
  let tenant: TestTenant;
  let openaiDocId: string;
  let localDocId: string;

  const env = () => ({ ...(dataDir ? { FENCE_DATA_DIR: dataDir } : {}) });
  const openaiEnv = () => ({ ...env(), FENCE_EMBEDDINGS: "openai", EMBEDDINGS_BASE_URL: fake.url, EMBEDDINGS_MODEL: "fake-embed" });
  const startOpenAI = () => TestFence.start(backend, { env: openaiEnv(), useConfiguredEmbeddings: true });
  const startLocal = () => TestFence.start(backend, { env: env() });
  const search = (fence: TestFence, query: string) =>
    readJson<SearchBody>(fence.request("POST", "/v1/search", { key: tenant.key, json: { query, k: 10 } }));

  async function using<T>(start: () => Promise<TestFence>, fn: (fence: TestFence) => Promise<T>): Promise<T> {
    const fence = await start();
    try {
      return await fn(fence);
    } finally {
      await fence.close();
    }
  }

  beforeAll(async () => {
    fake = await startFakeOpenAI({ embeddingDimensions: 64 });
    if (!backend.databaseUrl) dataDir = await mkdtemp(join(tmpdir(), "fence-openai-embeddings-"));
  });
  afterAll(async () => {
    await fake?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("probes the dimension, records the provider's model on chunks, and searches end to end", async () => {
    await using(startOpenAI, async (fence) => {
      expect(fence.fence.embeddings.model).toBe(OPENAI_MODEL);
      expect(fence.fence.embeddings.dimensions).toBe(64);
      expect(fake.requests.some((r) => r.path === "/v1/embeddings" && JSON.stringify(r.body.input) === '["dimension probe"]')).toBe(true);

      tenant = await fence.createTenant("openai-embeddings");
      const doc = await readJson<IngestedDocumentJson>(
        fence.request("POST", "/v1/documents", { key: tenant.key, json: { title: "Maintenance", text: OPENAI_DOC } }),
      );
      expect(doc.status).toBe(201);
      expect(doc.body.embedding_model).toBe(OPENAI_MODEL);
      openaiDocId = doc.body.id;
      expect(fake.requests.some((r) => r.path === "/v1/embeddings" && JSON.stringify(r.body.input).includes("north depot"))).toBe(true);

      const stored = await fence.fence.db.asOwner((tx) =>
        queryRows<{ model: string; dims: number }>(
          tx,
          sql`SELECT embedding_model AS model, vector_dims(embedding) AS dims FROM chunks WHERE document_id = ${openaiDocId}`,
        ),
      );
      expect(stored.length).toBe(doc.body.chunk_count);
      for (const row of stored) expect(row).toEqual({ model: OPENAI_MODEL, dims: 64 });

      const [index] = await fence.fence.db.asOwner((tx) =>
        queryRows<{ indexdef: string }>(tx, sql`SELECT indexdef FROM pg_indexes WHERE indexname = ${vectorIndexName(OPENAI_MODEL)}`),
      );
      expect(index?.indexdef).toMatch(/hnsw[\s\S]*vector\(64\)[\s\S]*openai:fake-embed/);

      const found = await search(fence, "When is Heron station maintenance?");
      expect(found.status).toBe(200);
      expect(found.body.results[0]?.document_id).toBe(openaiDocId);
      expect(fake.requests.some((r) => JSON.stringify(r.body.input).includes("When is Heron station maintenance?"))).toBe(true);

      const chat = await readJson<ChatBody>(
        fence.request("POST", "/v1/chat", { key: tenant.key, json: { question: "When does Heron station maintenance happen?" } }),
      );
      expect(chat.body.no_answer).toBe(false);
      expect(chat.body.citations[0]?.document_id).toBe(openaiDocId);
    });
  });

  it("an instance with the local model on the same database does not return the openai-model chunks", async () => {
    await using(startLocal, async (fence) => {
      expect(fence.fence.embeddings.model).not.toBe(OPENAI_MODEL);
      // The document is there (documents are model-agnostic)…
      const doc = await fence.request("GET", `/v1/documents/${openaiDocId}`, { key: tenant.key });
      expect(doc.status).toBe(200);
      // …but its vectors are another model's, so neither search leg considers them.
      expect((await search(fence, "When is Heron station maintenance?")).body.results).toEqual([]);
      const chat = await readJson<ChatBody>(
        fence.request("POST", "/v1/chat", { key: tenant.key, json: { question: "When does Heron station maintenance happen?" } }),
      );
      expect(chat.body).toMatchObject({ no_answer: true, citations: [] });

      localDocId = (await fence.upload(tenant, { title: "Cafeteria", text: LOCAL_DOC })).id;
      const found = await search(fence, "Heron station");
      expect(found.body.results.map((r) => r.document_id)).toEqual([localDocId]);
    });
  });

  it("and the openai instance, back on that database, does not return the local-model chunks", async () => {
    await using(startOpenAI, async (fence) => {
      const found = await search(fence, "Heron station");
      expect(found.status).toBe(200);
      expect(found.body.results.map((r) => r.document_id)).toEqual([openaiDocId]);
      expect(found.body.results.map((r) => r.document_id)).not.toContain(localDocId);
    });
  });
});
