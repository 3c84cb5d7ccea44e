import { and, eq, inArray, sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROMPT_VERSION } from "../../../src/chat/prompt.js";
import { queryRows } from "../../../src/db/database.js";
import { chunks, runs } from "../../../src/db/schema.js";
import { createLogger } from "../../../src/observability/logger.js";
import { RunRetentionSweep } from "../../../src/runs/retention-sweep.js";
import { startFakeOpenAI, type FakeOpenAI, type RecordedRequest } from "../../support/fake-openai.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { readJson } from "../../support/isolation-helpers.js";
import { waitForJob } from "../../support/job-helpers.js";
import { eventually, parseSse, putTenantOnPlan, setTenantOverrides } from "../../support/metering-helpers.js";
import { isolatedBackend } from "../../support/scratch-database.js";
import type { AdminRunJson, AdminRunListJson, ChatBody, DocumentListJson, ErrorBody, EvalCaseJson, EvalCaseListJson, IngestedDocumentJson, JobJson, RunJson, RunListJson, SearchBody, SearchResult } from "../../support/api-types.js";

/**
 * Run records: every chat and ingestion is recorded per tenant with its steps — the chunk ids that
 * were really retrieved, put into the prompt and cited, the model call's provider, model, prompt
 * version, tokens and finish reason — for successes, refusals (402, 429, 403) and failures (a
 * provider 500); synchronous and queued uploads alike. Runs are the tenant's own: another tenant
 * can neither read, list, page nor turn them into eval cases; the admin can read any. Questions
 * and answers are stored PII-masked; expired runs are swept, and only those.
 */
const COMPLETIONS = "/v1/chat/completions";
const CHAT_STEPS = ["answer_cache", "query_embedding", "retrieval", "context_assembly", "budget_reservation", "model_call", "answer"];

/** A hit as the retrieval step's detail records it: the search result's ids and score. */
type Hit = Pick<SearchResult, "chunk_id" | "document_id" | "score">;

const stepNamed = (run: RunJson, name: string) => run.steps.find((s) => s.name === name);
const detailOf = <T>(run: RunJson, name: string) => stepNamed(run, name)?.detail as T;
const unescapeXml = (text: string) => text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&amp;/g, "&");
/** The passage texts of a grounded prompt, in the order the model saw them. */
const promptPassages = (request: RecordedRequest) => {
  const messages = request.body.messages as { content: string }[];
  return [...messages.at(-1)!.content.matchAll(/<document id="(\d+)"[^>]*>\n([\s\S]*?)\n<\/document>/g)].map((m) => unescapeXml(m[2]!));
};

describe.each(backends)("run records on $name", (backend) => {
  let llm: FakeOpenAI;
  let fence: TestFence;
  let a: TestTenant;
  let b: TestTenant;
  const docs = new Map<string, string>();
  const completions = () => llm.requests.filter((r) => r.path === COMPLETIONS);

  const chat = (tenant: TestTenant, question: string, headers: Record<string, string> = {}) =>
    fence.request("POST", "/v1/chat", { key: tenant.key, json: { question }, headers });
  const get = <T>(tenant: TestTenant, path: string) => readJson<T>(fence.request("GET", path, { key: tenant.key }));
  const runOf = async (tenant: TestTenant, requestId: string) => {
    const res = await get<RunJson>(tenant, `/v1/runs/${encodeURIComponent(requestId)}`);
    expect(res.status, res.text).toBe(200);
    return res.body;
  };
  /**
   * A job attempt's run is written after the attempt has ended (the job shows `succeeded` or
   * `failed` first), by whichever instance ran it: poll for it briefly.
   */
  const jobRunOf = async (tenant: TestTenant, jobId: string) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await get<RunJson>(tenant, `/v1/runs/${encodeURIComponent(`job:${jobId}`)}`);
      if (res.status === 200 || Date.now() > deadline) {
        expect(res.status, res.text).toBe(200);
        return res.body;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  /** Chunk texts as stored, read past RLS by the platform. */
  const chunkTexts = async (ids: string[]) => {
    const rows = await fence.fence.db.asPlatformAdmin("test: read chunks", (tx) =>
      tx.select({ id: chunks.id, text: chunks.text }).from(chunks).where(inArray(chunks.id, ids)),
    );
    return new Map(rows.map((r) => [r.id, r.text]));
  };

  beforeAll(async () => {
    llm = await startFakeOpenAI();
    fence = await TestFence.start(backend, { env: { LLM_BASE_URL: llm.url, LLM_MODEL: "fake-model", LLM_MAX_RETRIES: "0" } });
    // On `pro` (600 requests a minute): this suite makes about 60 of A's requests, and the free
    // plan's limit (60) refused the last ones when the suite ran fast on a busy machine.
    a = await fence.createTenant("runs-a", "pro");
    b = await fence.createTenant("runs-b", "pro");
    const corpus = {
      "Refund policy": "Customers can request a refund within 30 days of purchase. Refunds go back to the original card.",
      "Shipping times": "Express shipping takes 2 days. Standard shipping takes 5 to 7 days.",
      "Warranty terms": "The warranty lasts 12 months. An extended warranty costs 20 euros.",
    };
    for (const [title, text] of Object.entries(corpus)) docs.set(title, (await fence.upload(a, { title, text })).id);
    await fence.upload(b, { title: "Kayak rental", text: "Kayaks can be rented by the hour at the harbour office." });
  });
  afterAll(async () => {
    await fence?.close();
    await llm?.close();
  });

  it("records a successful chat with every step: the chunks retrieved, put into the prompt in order, and cited", async () => {
    llm.setAnswer((prompt) => (prompt.includes('<document id="2"') ? "Refunds take 30 days [1], shipping 2 days [2]." : "Refunds take 30 days [1]."));
    const question = "How long do refunds and express shipping take?";
    const res = await readJson<ChatBody & { request_id: string }>(chat(a, question));
    expect(res.status).toBe(200);
    const run = await runOf(a, res.body.request_id);

    expect(run).toMatchObject({
      request_id: res.body.request_id,
      kind: "chat",
      status: "succeeded",
      error: null,
      prompt_version: PROMPT_VERSION,
      provider: "openai-compatible",
      model: "fake-model",
      key_id: a.keyId,
      question,
      answer: res.body.answer,
    });
    expect(run.steps.map((s) => s.name)).toEqual(CHAT_STEPS);
    expect(run.steps.every((s) => s.status === "succeeded" && s.duration_ms >= 0)).toBe(true);
    expect(Date.parse(run.finished_at) - Date.parse(run.started_at)).toBeGreaterThanOrEqual(0);
    expect(detailOf(run, "answer_cache")).toEqual({ hit: false });
    expect(detailOf(run, "query_embedding")).toEqual({ model: fence.fence.embeddings.model, cached: false });

    // Retrieval: exactly what a search for the same question returns (same chunks, same order, same scores).
    const { hits, k } = detailOf<{ hits: Hit[]; k: number }>(run, "retrieval");
    const searched = await readJson<SearchBody>(fence.request("POST", "/v1/search", { key: a.key, json: { query: question, k } }));
    expect(hits.map((h) => [h.chunk_id, h.document_id])).toEqual(searched.body.results.map((h) => [h.chunk_id, h.document_id]));
    for (const [i, hit] of hits.entries()) expect(hit.score).toBeCloseTo(searched.body.results[i]!.score, 6);

    // Context assembly: the chunks whose texts the model received, in the order it received them.
    const { passages } = detailOf<{ passages: { citation: number; chunk_id: string; document_id: string }[] }>(run, "context_assembly");
    expect(passages.length).toBeGreaterThanOrEqual(2);
    expect(passages.map((p) => p.citation)).toEqual(passages.map((_, i) => i + 1));
    expect(passages.every((p) => hits.some((h) => h.chunk_id === p.chunk_id && h.document_id === p.document_id))).toBe(true);
    const texts = await chunkTexts(passages.map((p) => p.chunk_id));
    expect(promptPassages(completions().at(-1)!)).toEqual(passages.map((p) => texts.get(p.chunk_id)));

    // Model call: what the provider was asked and reported.
    const charge = llm.charges.at(-1)!;
    expect(detailOf(run, "budget_reservation")).toMatchObject({ model: "fake-model", downgraded: false });
    expect(detailOf(run, "model_call")).toEqual({
      provider: "openai-compatible",
      model: "fake-model",
      prompt_version: PROMPT_VERSION,
      input_tokens: charge.prompt_tokens,
      output_tokens: charge.completion_tokens,
      total_tokens: charge.prompt_tokens + charge.completion_tokens,
      usage_reported: true,
      finish_reason: "stop",
    });

    // Answer: the citations the client got, by document and chunk.
    const answer = detailOf<{ citations: { citation: number; document_id: string; chunk_id: string }[]; mode: string }>(run, "answer");
    expect(answer).toMatchObject({ mode: "llm", cached: false, no_answer: false, model: "fake-model" });
    expect(answer.citations).toEqual(res.body.citations.map((c) => ({ citation: c.citation, document_id: c.document_id, chunk_id: c.chunk_id })));
    expect(answer.citations.map((c) => c.chunk_id)).toEqual(passages.slice(0, 2).map((p) => p.chunk_id));
  });

  it("records a cached query embedding, a streamed answer, and an answer served from the cache", async () => {
    llm.setAnswer(() => "Express shipping takes 2 days [1].");
    const question = "How fast is express shipping?";
    expect((await fence.request("POST", "/v1/search", { key: a.key, json: { query: question } })).status).toBe(200);

    const streamed = await fence.request("POST", "/v1/chat", { key: a.key, json: { question, stream: true } });
    expect(streamed.status).toBe(200);
    const events = parseSse(await streamed.text());
    const tokens = events.filter((e) => e.event === "token").map((e) => (e.data as { text: string }).text).join("");
    const done = events.find((e) => e.event === "done")!.data as { request_id: string };
    const run = await runOf(a, done.request_id);
    expect(run.status).toBe("succeeded");
    expect(run.steps.map((s) => s.name)).toEqual(CHAT_STEPS);
    expect(detailOf(run, "query_embedding")).toMatchObject({ cached: true });
    expect(detailOf(run, "model_call")).toMatchObject({ model: "fake-model", finish_reason: "stop", usage_reported: true });
    expect(run.answer).toBe(tokens);

    const again = await readJson<ChatBody & { request_id: string }>(chat(a, question));
    expect(again.body.cached).toBe(true);
    const cachedRun = await runOf(a, again.body.request_id);
    expect(cachedRun.steps.map((s) => s.name)).toEqual(["answer_cache", "answer"]);
    expect(detailOf(cachedRun, "answer_cache")).toEqual({ hit: true });
    expect(detailOf(cachedRun, "answer")).toMatchObject({ cached: true });
    expect(cachedRun.answer).toBe(again.body.answer);
  });

  it("records a chat refused at the budget (402) with the step that refused it, and no model call", async () => {
    const tenant = await fence.createTenant();
    await fence.upload(tenant, { title: "Refund policy", text: "Customers can request a refund within 30 days of purchase." });
    await putTenantOnPlan(fence, tenant, `plan-${tenant.id.slice(0, 8)}`, { tokensPerDay: 1 });
    const calls = completions().length;
    const res = await chat(tenant, "How long do I have to request a refund?");
    expect(res.status).toBe(402);
    const requestId = res.headers.get("x-request-id")!;
    expect(completions().length).toBe(calls);

    const run = await runOf(tenant, requestId);
    expect(run).toMatchObject({ kind: "chat", status: "refused", error: { code: "budget_exceeded" }, prompt_version: PROMPT_VERSION });
    expect(run.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      "answer_cache:succeeded",
      "query_embedding:succeeded",
      "retrieval:succeeded",
      "context_assembly:succeeded",
      "budget_reservation:failed",
    ]);
    expect(stepNamed(run, "budget_reservation")!.detail).toMatchObject({ code: "budget_exceeded" });
    expect(stepNamed(run, "budget_reservation")!.error).toMatch(/budget/);
  });

  it("records a chat whose provider failed (500) as failed, with the failed model call", async () => {
    llm.failNext(COMPLETIONS, 500, 1);
    const res = await chat(a, "What does the extended warranty cost?");
    expect(res.status).toBe(502);
    const run = await runOf(a, res.headers.get("x-request-id")!);
    expect(run).toMatchObject({ status: "failed", error: { code: "upstream_error" }, model: "fake-model", provider: "openai-compatible" });
    expect(run.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      "answer_cache:succeeded",
      "query_embedding:succeeded",
      "retrieval:succeeded",
      "context_assembly:succeeded",
      "budget_reservation:succeeded",
      "model_call:failed",
    ]);
    expect(stepNamed(run, "model_call")).toMatchObject({
      detail: { provider: "openai-compatible", model: "fake-model", prompt_version: PROMPT_VERSION, code: "upstream_error" },
      error: expect.stringMatching(/HTTP 500/),
    });
    expect(run.answer).toBeNull();
  });

  it("records refusals made before the chat ran: 403 feature disabled and 429 over the request limit", async () => {
    const tenant = await fence.createTenant();
    await fence.upload(tenant, { title: "Refund policy", text: "Customers can request a refund within 30 days of purchase." });
    await setTenantOverrides(fence, tenant, { features: { "chat.streaming": false } });
    const disabled = await fence.request("POST", "/v1/chat", { key: tenant.key, json: { question: "Refund window?", stream: true } });
    expect(disabled.status).toBe(403);
    const refused = await runOf(tenant, disabled.headers.get("x-request-id")!);
    expect(refused).toMatchObject({ status: "refused", error: { code: "feature_disabled" }, question: "Refund window?" });

    await putTenantOnPlan(fence, tenant, `plan-${tenant.id.slice(0, 8)}`, { requestsPerMinute: 1 });
    const answers = [];
    for (const question of ["Refund window?", "Refund window again?", "And again?", "Once more?"]) answers.push(await chat(tenant, question));
    const limited = answers.filter((res) => res.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(3);
    // Refusals are summarised per minute: the summary run carries the first refused request's id
    // and counts the others. The tenant is over its limit now: read through the admin route.
    const run = await readJson<AdminRunJson>(fence.admin("GET", `/tenants/${tenant.id}/runs/${limited[0]!.headers.get("x-request-id")}`));
    expect(run.status).toBe(200);
    expect(run.body).toMatchObject({ tenant_id: tenant.id, kind: "chat", status: "refused", error: { code: "rate_limited" } });
    const counted = await readJson<{ runs: AdminRunJson[] }>(fence.admin("GET", `/tenants/${tenant.id}/runs?status=refused&kind=chat`));
    const summaries = counted.body.runs.filter((r) => r.steps[0]?.name === "admission");
    // A minute boundary between the refusals splits them over two summaries; together they count all.
    const total = summaries.reduce((n, r) => n + Number(r.steps[0]!.detail!.refused_requests), 0);
    expect(total).toBe(limited.length);
    const limitedIds = limited.map((res) => res.headers.get("x-request-id"));
    for (const summary of summaries) expect(limitedIds).toContain(summary.steps[0]!.detail!.last_request_id);
  });

  it("records a synchronous upload with parse → chunk → embed → store, and a parse failure", async () => {
    const res = await fence.request("POST", "/v1/documents", {
      key: a.key,
      json: { title: "Opening hours", text: "The shop opens at 9 and closes at 18 on weekdays." },
    });
    expect(res.status).toBe(201);
    const doc = (await res.json()) as IngestedDocumentJson;
    const run = await runOf(a, res.headers.get("x-request-id")!);
    expect(run).toMatchObject({ kind: "ingest", status: "succeeded", model: fence.fence.embeddings.model, prompt_version: null, question: null });
    expect(run.steps.map((s) => `${s.name}:${s.status}`)).toEqual(["parse:succeeded", "chunk:succeeded", "embed:succeeded", "store:succeeded"]);
    expect(detailOf(run, "chunk")).toEqual({ chunks: doc.chunk_count });
    expect(detailOf(run, "embed")).toEqual({ vectors: doc.chunk_count });
    expect(detailOf(run, "store")).toEqual({ document_id: doc.id, outcome: "created", chunks: doc.chunk_count, version: 1 });

    const form = new FormData();
    form.append("file", new File(["%PDF-1.7\nnot really a pdf\n%%EOF"], "broken.pdf", { type: "application/pdf" }));
    const broken = await fence.request("POST", "/v1/documents", { key: a.key, body: form });
    expect(broken.status).toBe(422);
    const failed = await runOf(a, broken.headers.get("x-request-id")!);
    expect(failed).toMatchObject({ kind: "ingest", status: "failed", error: { code: "unprocessable_document" } });
    expect(failed.steps.map((s) => `${s.name}:${s.status}`)).toEqual(["parse:failed"]);
  });

  it("records one run per attempt of a queued upload, under the job's request id", async () => {
    const queued = await fence.request("POST", "/v1/documents", {
      key: a.key,
      json: { title: "Holiday closures", text: "The shop is closed on public holidays and on the first Monday of August." },
      headers: { prefer: "respond-async" },
    });
    expect(queued.status).toBe(202);
    const job = await waitForJob(async (path) => fence.request("GET", path, { key: a.key }), ((await queued.json()) as JobJson).id);
    expect(job.status).toBe("succeeded");
    const run = await jobRunOf(a, job.id);
    expect(run).toMatchObject({ request_id: `job:${job.id}`, kind: "ingest", status: "succeeded", key_id: a.keyId });
    expect(run.steps.map((s) => `${s.name}:${s.status}:${s.attempt}`)).toEqual([
      "parse:succeeded:1",
      "chunk:succeeded:1",
      "embed:succeeded:1",
      "store:succeeded:1",
    ]);
    expect(detailOf(run, "store")).toMatchObject({ document_id: job.result!.document_id, outcome: "created" });

    const blank = await fence.request("POST", "/v1/documents", { key: a.key, json: { text: " \n\t " }, headers: { prefer: "respond-async" } });
    expect(blank.status).toBe(202);
    const failedJob = await waitForJob(async (path) => fence.request("GET", path, { key: a.key }), ((await blank.json()) as JobJson).id);
    expect(failedJob.status).toBe("failed");
    const failed = await jobRunOf(a, failedJob.id);
    expect(failed).toMatchObject({ kind: "ingest", status: "failed", error: { code: failedJob.error!.code } });
    expect(failed.steps.map((s) => `${s.name}:${s.status}`)).toEqual(["parse:succeeded", "chunk:failed"]);
  });

  it("lists the tenant's runs newest first with filters and cursors", async () => {
    const first = await get<RunListJson>(a, "/v1/runs?limit=2");
    expect(first.status).toBe(200);
    expect(first.body.runs).toHaveLength(2);
    const all: RunJson[] = [...first.body.runs];
    let cursor = first.body.next_cursor;
    while (cursor) {
      const page = await get<RunListJson>(a, `/v1/runs?limit=2&cursor=${cursor}`);
      expect(page.status).toBe(200);
      all.push(...page.body.runs);
      cursor = page.body.next_cursor;
    }
    expect(new Set(all.map((r) => r.id)).size).toBe(all.length);
    const starts = all.map((r) => Date.parse(r.started_at));
    expect(starts).toEqual([...starts].sort((x, y) => y - x));
    expect(all.filter((r) => r.kind === "chat").length).toBeGreaterThanOrEqual(4);

    const chats = await get<RunListJson>(a, `/v1/runs?kind=chat&status=failed&prompt_version=${PROMPT_VERSION}&limit=100`);
    expect(chats.body.runs.length).toBeGreaterThanOrEqual(1);
    expect(chats.body.runs.every((r) => r.kind === "chat" && r.status === "failed" && r.prompt_version === PROMPT_VERSION)).toBe(true);
    expect((await get<RunListJson>(a, "/v1/runs?prompt_version=grounded-v0")).body.runs).toEqual([]);
    const future = new Date(Date.now() + 60_000).toISOString();
    expect((await get<RunListJson>(a, `/v1/runs?since=${encodeURIComponent(future)}`)).body.runs).toEqual([]);
    const since = all.at(-2)!.started_at;
    const recent = await get<RunListJson>(a, `/v1/runs?since=${encodeURIComponent(since)}&limit=100`);
    expect(recent.body.runs.map((r) => r.id)).toEqual(all.filter((r) => Date.parse(r.started_at) >= Date.parse(since)).map((r) => r.id));
    expect((await get(a, "/v1/runs?since=yesterday")).status).toBe(400);
    expect((await get(a, `/v1/runs?cursor=${crypto.randomUUID()}`)).status).toBe(400);
  });

  it("keeps runs to their tenant: B cannot read, list, page, or turn A's runs into eval cases; the admin can read any", async () => {
    const asked = await readJson<ChatBody & { request_id: string }>(chat(a, "Is there a warranty on products?"));
    const aRun = await runOf(a, asked.body.request_id);

    const missing = await get<ErrorBody>(b, `/v1/runs/${crypto.randomUUID()}`);
    const stolen = await get<ErrorBody>(b, `/v1/runs/${aRun.request_id}`);
    expect(missing.status).toBe(404);
    expect(stolen.status).toBe(404);
    expect(stolen.body.error).toMatchObject({ code: missing.body.error.code, message: missing.body.error.message });

    const bList = await get<RunListJson>(b, "/v1/runs?limit=100");
    expect(bList.status).toBe(200);
    expect(bList.body.runs.length).toBeGreaterThan(0); // B's own upload
    expect(bList.body.runs.some((r) => r.id === aRun.id || r.request_id === aRun.request_id)).toBe(false);
    expect((await get<RunListJson>(b, `/v1/runs?request_id=${aRun.request_id}`)).body.runs).toEqual([]);
    const badCursor = await get<ErrorBody>(b, `/v1/runs?cursor=${aRun.id}`);
    const randomCursor = await get<ErrorBody>(b, `/v1/runs?cursor=${crypto.randomUUID()}`);
    expect(badCursor.status).toBe(400);
    expect(badCursor.body.error.message).toBe(randomCursor.body.error.message);

    for (const body of [{ request_id: aRun.request_id }, { run_id: aRun.id }]) {
      const res = await readJson<ErrorBody>(fence.request("POST", "/v1/evals/cases", { key: b.key, json: body }));
      expect(res.status, JSON.stringify(body)).toBe(404);
      expect(res.body.error.code).toBe("not_found");
    }
    expect((await get<EvalCaseListJson>(b, "/v1/evals/cases")).body.cases).toEqual([]);

    // B reusing A's request id as its own x-request-id gets a run of its own; A's is untouched.
    const reused = await chat(b, "Can I rent a kayak?", { "x-request-id": aRun.request_id });
    expect(reused.status).toBe(200);
    expect((await runOf(b, aRun.request_id)).question).toBe("Can I rent a kayak?");
    expect(await runOf(a, aRun.request_id)).toEqual(aRun);

    const admin = await readJson<AdminRunJson>(fence.admin("GET", `/tenants/${a.id}/runs/${aRun.request_id}`));
    expect(admin.status).toBe(200);
    expect(admin.body).toEqual({ ...aRun, tenant_id: a.id });
    const adminList = await readJson<AdminRunListJson>(fence.admin("GET", `/tenants/${a.id}/runs?kind=chat&limit=100`));
    expect(adminList.body.runs.some((r) => r.id === aRun.id)).toBe(true);
    expect(adminList.body.runs.every((r) => r.tenant_id === a.id)).toBe(true);
    expect((await fence.admin("GET", `/tenants/${crypto.randomUUID()}/runs`)).status).toBe(404);
    expect((await fence.request("GET", `/v1/admin/tenants/${a.id}/runs`, { key: b.key })).status).toBe(401);
  });

  it("turns the tenant's own chat run into an eval case, checking the documents it names", async () => {
    llm.setAnswer(() => "Refunds take 14 days [1].");
    const asked = await readJson<ChatBody & { request_id: string }>(chat(a, "How many days do I have for a refund?"));
    const refundDoc = docs.get("Refund policy")!;
    const created = await readJson<EvalCaseJson>(
      fence.request("POST", "/v1/evals/cases", {
        key: a.key,
        json: { request_id: asked.body.request_id, expected_document_ids: [refundDoc], must_contain: ["30 days"], must_not_contain: ["14 days"] },
      }),
    );
    expect(created.status).toBe(201);
    const run = await runOf(a, asked.body.request_id);
    expect(created.body).toMatchObject({
      question: "How many days do I have for a refund?",
      expected_document_ids: [refundDoc],
      must_contain: ["30 days"],
      must_not_contain: ["14 days"],
      source_run_id: run.id,
      source_request_id: asked.body.request_id,
      reported_answer: "Refunds take 14 days [1].",
      prompt_version: PROMPT_VERSION,
    });
    const byRunId = await readJson<EvalCaseJson>(fence.request("POST", "/v1/evals/cases", { key: a.key, json: { run_id: run.id } }));
    expect(byRunId.status).toBe(201);
    const listed = await get<EvalCaseListJson>(a, "/v1/evals/cases");
    expect(listed.body.cases.slice(0, 2).map((c) => c.id)).toEqual([byRunId.body.id, created.body.id]);

    const bDoc = (await get<DocumentListJson>(b, "/v1/documents")).body.documents[0]!.id;
    for (const expected of [[bDoc], [crypto.randomUUID()]]) {
      const res = await fence.request("POST", "/v1/evals/cases", { key: a.key, json: { run_id: run.id, expected_document_ids: expected } });
      expect(res.status).toBe(400);
    }
    const ingestRun = (await get<RunListJson>(a, "/v1/runs?kind=ingest&limit=1")).body.runs[0]!;
    expect((await fence.request("POST", "/v1/evals/cases", { key: a.key, json: { run_id: ingestRun.id } })).status).toBe(400);
    expect((await fence.request("POST", "/v1/evals/cases", { key: a.key, json: { run_id: run.id, request_id: run.request_id } })).status).toBe(400);
  });

  it("stores questions and answers with personal data masked, in the run and in eval cases", async () => {
    const email = "jane.doe@example.com";
    const card = "4111 1111 1111 1111";
    llm.setAnswer(() => `Write to ${email} about refunds [1].`);
    const question = `I am ${email}, card ${card}: how long is the refund window?`;
    const res = await readJson<ChatBody & { request_id: string }>(chat(a, question));
    expect(res.status).toBe(200);
    expect(res.body.answer).toContain(email); // the client's own answer is not altered

    const run = await runOf(a, res.body.request_id);
    expect(run.question).toBe("I am [email], card [card]: how long is the refund window?");
    expect(run.answer).toBe("Write to [email] about refunds [1].");
    const [stored] = await fence.fence.db.asPlatformAdmin("test: read run", (tx) =>
      queryRows<{ row: string }>(tx, sql`SELECT row_to_json(r)::text AS row FROM runs r WHERE r.tenant_id = ${a.id} AND r.id = ${run.id}`),
    );
    expect(stored!.row).not.toContain(email);
    expect(stored!.row).not.toContain(card);
    expect(stored!.row).not.toContain(card.replaceAll(" ", ""));

    const created = await readJson<EvalCaseJson>(fence.request("POST", "/v1/evals/cases", { key: a.key, json: { run_id: run.id } }));
    expect(created.body.question).toBe(run.question);
    expect(created.body.reported_answer).toBe(run.answer);
  });

  it("sweeps only runs past the retention period, in bounded batches", async () => {
    const days = fence.config.runRetentionDays;
    expect(days).toBe(30);
    const old = (tenant: TestTenant, ageDays: number) => ({
      tenantId: tenant.id,
      requestId: `sweep-${crypto.randomUUID()}`,
      kind: "chat" as const,
      status: "succeeded" as const,
      project: "default",
      environment: "prod",
      startedAt: new Date(Date.now() - ageDays * 86_400_000),
      finishedAt: new Date(Date.now() - ageDays * 86_400_000),
      latencyMs: 1,
    });
    // The suites share a database: expired runs an interrupted earlier run left behind go first.
    await fence.fence.runs.store.deleteExpired(new Date(Date.now() - days * 86_400_000));
    const rows = [old(a, days + 5), old(a, days + 1), old(b, days + 2), old(a, days - 1), old(b, 1), old(a, days + 3)];
    const inserted = await fence.fence.db.asPlatformAdmin("test: insert runs", (tx) =>
      tx.insert(runs).values(rows).returning({ id: runs.id, requestId: runs.requestId }),
    );
    // In the order of `rows`: RETURNING need not follow VALUES (Citus returns rows shard by shard).
    const ids = rows.map((row) => inserted.find((r) => r.requestId === row.requestId)!);
    const expired = ids.filter((_, i) => i !== 3 && i !== 4).map((r) => r.id);
    const kept = [ids[3]!.id, ids[4]!.id];
    const remaining = async () =>
      (
        await fence.fence.db.asPlatformAdmin("test: read runs", (tx) =>
          tx.select({ id: runs.id }).from(runs).where(and(inArray(runs.id, ids.map((r) => r.id)), eq(runs.kind, "chat"))),
        )
      ).map((r) => r.id);

    // One batch of two deletes two of the four expired runs, oldest first per tenant.
    const before = new Date(Date.now() - days * 86_400_000);
    expect(await fence.fence.runs.store.deleteExpired(before, { batchSize: 2, maxBatches: 1 })).toBe(2);
    expect((await remaining()).filter((id) => expired.includes(id))).toHaveLength(2);

    // The periodic sweep (here every 50 ms) deletes the rest, and stops when told.
    const sweeper = new RunRetentionSweep(fence.fence.runs.store, createLogger("silent"), { retentionDays: days, intervalMs: 50 });
    sweeper.start();
    try {
      await eventually(async () => ((await remaining()).length === kept.length ? true : undefined), 5000);
    } finally {
      await sweeper.stop();
    }
    expect((await remaining()).sort()).toEqual([...kept].sort());
    // The tenants' fresh runs are all still there.
    const fresh = await get<RunListJson>(a, "/v1/runs?kind=chat&limit=1");
    expect(fresh.status, JSON.stringify(fresh.body)).toBe(200);
    expect(fresh.body.runs).toHaveLength(1);
  });
});

describe.each(backends)("run recording failures on $name", (backend) => {
  let fence: TestFence;
  let drop: () => Promise<void>;
  let isolatedUrl: string | undefined;

  beforeAll(async () => {
    // A database of its own: the test takes a privilege away from the tenant role for a moment.
    const isolated = await isolatedBackend(backend, "fence_runs");
    drop = isolated.drop;
    isolatedUrl = isolated.backend.databaseUrl;
    fence = await TestFence.start(isolated.backend, { env: { FENCE_JOB_WORKERS: "0" } });
  });
  afterAll(async () => {
    await fence?.close();
    await drop?.();
  });

  it("answers without waiting for the run's write; a read of the run waits for it (Postgres: a lock holds the write)", async () => {
    const url = isolatedUrl;
    if (!url) return; // PGlite has one connection: a lock held elsewhere would stop the chat too
    const tenant = await fence.createTenant();
    await fence.upload(tenant, { title: "Opening hours", text: "The shop opens at 9 and closes at 18 on weekdays." });
    const blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
    try {
      await blocker.query("BEGIN");
      await blocker.query("LOCK TABLE runs IN EXCLUSIVE MODE"); // reads pass, inserts wait
      const res = await readJson<ChatBody & { request_id: string }>(
        fence.request("POST", "/v1/chat", { key: tenant.key, json: { question: "When does the shop open?" } }),
      );
      expect(res.status).toBe(200); // answered while its run's insert is still blocked
      let read: Response | undefined;
      const reading = Promise.resolve(fence.request("GET", `/v1/runs/${res.body.request_id}`, { key: tenant.key })).then((r) => (read = r));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(read).toBeUndefined(); // the read waits for the write under way…
      await blocker.query("COMMIT");
      await reading;
      expect(read!.status).toBe(200); // …and then finds the run
    } finally {
      await blocker.end();
    }
  });

  it("answers the request when its run cannot be stored, and counts the failure", async () => {
    const tenant = await fence.createTenant();
    await fence.upload(tenant, { title: "Refund policy", text: "Customers can request a refund within 30 days of purchase." });
    await fence.fence.runs.settled(); // the upload's own run is written after its response
    const failuresBefore = fence.fence.runs.recordingFailures;
    await fence.fence.db.asOwner((tx) => tx.execute(sql`REVOKE INSERT ON runs FROM fence_app`));
    try {
      const res = await readJson<ChatBody & { request_id: string }>(
        fence.request("POST", "/v1/chat", { key: tenant.key, json: { question: "How long is the refund window?" } }),
      );
      expect(res.status).toBe(200);
      expect(res.body.answer).toContain("30 days");
      // The run is written after the response; wait for it before looking at the outcome.
      await fence.fence.runs.settled();
      expect(fence.fence.runs.recordingFailures).toBe(failuresBefore + 1);
      expect((await fence.request("GET", `/v1/runs/${res.body.request_id}`, { key: tenant.key })).status).toBe(404);
    } finally {
      await fence.fence.db.asOwner((tx) => tx.execute(sql`GRANT INSERT ON runs TO fence_app`));
    }
    const after = await readJson<ChatBody & { request_id: string }>(
      fence.request("POST", "/v1/chat", { key: tenant.key, json: { question: "Refund window, once more?" } }),
    );
    expect((await fence.request("GET", `/v1/runs/${after.body.request_id}`, { key: tenant.key })).status).toBe(200);
    expect(fence.fence.runs.recordingFailures).toBe(failuresBefore + 1);
  });
});
