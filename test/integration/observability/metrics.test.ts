import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeOpenAI, type FakeOpenAI } from "../../support/fake-openai.js";
import { ADMIN_KEY, backends, TestFence, type TestTenant } from "../../support/harness.js";
import { labelValues, parseExposition, sumOf, type Sample } from "../../support/prometheus-text.js";
import { isolatedBackend } from "../../support/scratch-database.js";
import type { IssuedKeyJson } from "../../support/api-types.js";

/**
 * GET /metrics through the whole app, on both backends: real requests by two tenants, then a
 * scrape with the admin key (and the scrape token) must show each tenant's figures under its own
 * id and nowhere else — requests, refusals, tokens, cost, cache, queued jobs and their waits, the
 * LLM lane and its breaker — while a tenant key or no key gets 401. On Postgres the suite has a
 * scratch database of its own, so the queued jobs stay queued until this suite runs them.
 */
const METRICS_TOKEN = "scrape-token-for-tests-0123456789";

describe.each(backends)("GET /metrics on $name", (baseBackend) => {
  let llm: FakeOpenAI;
  let fence: TestFence;
  let drop: () => Promise<void>;
  let a: TestTenant;
  let b: TestTenant;
  let aLimitedKey: string;

  async function scrape(authorization = `Bearer ${ADMIN_KEY}`): Promise<Sample[]> {
    const res = await fence.request("GET", "/metrics", { headers: { authorization } });
    const text = await res.text();
    expect(res.status, text.slice(0, 200)).toBe(200);
    return parseExposition(text);
  }

  async function as(tenant: { key: string }, method: string, path: string, json?: unknown, headers?: Record<string, string>) {
    const res = await fence.request(method, path, { key: tenant.key, json, headers });
    await res.text();
    return res.status;
  }

  beforeAll(async () => {
    llm = await startFakeOpenAI();
    const isolated = await isolatedBackend(baseBackend, "fence_metrics");
    drop = isolated.drop;
    fence = await TestFence.start(isolated.backend, {
      env: {
        LLM_BASE_URL: llm.url,
        LLM_MODEL: "fake-model",
        LLM_MAX_RETRIES: "0",
        LLM_BREAKER_FAILURES: "1",
        FENCE_METRICS_TOKEN: METRICS_TOKEN,
        FENCE_JOB_WORKERS: "0",
        FENCE_JOB_POLL_MS: "50",
        // One micro-unit per token, so local models cost something and cost counters move.
        FENCE_INTERNAL_MICROS_PER_MTOK: "1000000",
      },
    });
    a = await fence.createTenant("metrics-a");
    b = await fence.createTenant("metrics-b");
    const limited = await fence.admin("POST", `/tenants/${a.id}/keys`, { name: "limited", requests_per_minute: 2 });
    aLimitedKey = ((await limited.json()) as IssuedKeyJson).key;

    expect(await as(a, "POST", "/v1/documents", { title: "Refunds", text: "Customers can request a refund within 30 days of purchase." })).toBe(201);
    for (let i = 0; i < 2; i++) expect(await as(a, "POST", "/v1/search", { query: "refund window" })).toBe(200);
    expect(await as(a, "POST", "/v1/chat", { question: "How long do I have to ask for a refund?" })).toBe(200);
    for (let i = 0; i < 2; i++) expect(await as({ key: aLimitedKey }, "GET", "/v1/limits")).toBe(200);
    expect(await as({ key: aLimitedKey }, "GET", "/v1/limits")).toBe(429);
    for (let i = 0; i < 3; i++) {
      expect(await as(a, "POST", "/v1/documents", { title: `Queued ${i}`, text: `Queued note ${i} about shipping.` }, { prefer: "respond-async" })).toBe(202);
    }
    expect(await as(b, "GET", "/v1/documents")).toBe(200);
    expect(await as(b, "GET", "/v1/documents/00000000-0000-4000-8000-000000000000")).toBe(404);
  }, 120_000);

  afterAll(async () => {
    await fence?.close();
    await drop?.();
    await llm?.close();
  });

  it("refuses a tenant key and no key with 401, and shows no tenant's figures to them", async () => {
    for (const authorization of [`Bearer ${a.key}`, `Bearer ${b.key}`, `Bearer ${aLimitedKey}`, "", `Bearer ${ADMIN_KEY.slice(0, -1)}`]) {
      const res = await fence.request("GET", "/metrics", { headers: authorization ? { authorization } : {} });
      const text = await res.text();
      expect(res.status).toBe(401);
      expect(JSON.parse(text)).toMatchObject({ error: { code: "unauthorized" } });
      expect(text).not.toContain(a.id);
      expect(text).not.toContain("fence_");
    }
  });

  it("serves the Prometheus text format to the admin key and to the scrape token", async () => {
    const res = await fence.request("GET", "/metrics", { key: METRICS_TOKEN });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const samples = parseExposition(await res.text());
    expect(sumOf(samples, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(sumOf(samples, "fence_http_request_duration_seconds_count")).toBeGreaterThan(0);
  });

  it("counts each tenant's requests, errors and refusals under its own id, by route template", async () => {
    const s = await scrape();
    const count = (labels: Record<string, string>) => sumOf(s, "fence_http_request_duration_seconds_count", labels);
    expect(count({ tenant: a.id, route: "/v1/search", method: "POST", status_class: "2xx" })).toBe(2);
    expect(count({ tenant: a.id, route: "/v1/documents", status_class: "2xx" })).toBe(4);
    expect(count({ tenant: b.id, route: "/v1/documents", method: "GET" })).toBe(1);
    expect(count({ tenant: b.id, route: "/v1/search" })).toBe(0);
    // B's miss is labelled by template: no document id (nor any raw path) is a label value.
    expect(count({ tenant: b.id, route: "/v1/documents/:id", status_class: "4xx" })).toBe(1);
    expect(labelValues(s, "route").has("/v1/documents/00000000-0000-4000-8000-000000000000")).toBe(false);
    expect(sumOf(s, "fence_http_request_errors_total", { tenant: b.id, code: "not_found" })).toBe(1);
    expect(sumOf(s, "fence_http_request_errors_total", { tenant: a.id, code: "rate_limited", route: "/v1/limits" })).toBe(1);
    expect(sumOf(s, "fence_limit_refusals_total", { tenant: a.id, reason: "rate_limit" })).toBe(1);
    expect(sumOf(s, "fence_limit_refusals_total", { tenant: b.id })).toBe(0);
    // The admin's own requests (tenant and key creation) belong to no tenant.
    expect(count({ tenant: "none", route: "/v1/admin/tenants" })).toBeGreaterThanOrEqual(2);
  });

  it("meters tokens and cost per tenant and model, only for the tenant that used them", async () => {
    const s = await scrape();
    const embedModel = fence.fence.embeddings.model;
    expect(sumOf(s, "fence_tokens_total", { tenant: a.id, feature: "embed_documents", model: embedModel, type: "prompt" })).toBeGreaterThan(0);
    expect(sumOf(s, "fence_tokens_total", { tenant: a.id, feature: "chat", model: "fake-model", type: "prompt" })).toBeGreaterThan(0);
    expect(sumOf(s, "fence_tokens_total", { tenant: a.id, feature: "chat", model: "fake-model", type: "completion" })).toBeGreaterThan(0);
    expect(sumOf(s, "fence_cost_micros_total", { tenant: a.id })).toBeGreaterThan(0);
    // B embedded nothing and asked nothing.
    expect(sumOf(s, "fence_tokens_total", { tenant: b.id })).toBe(0);
    expect(sumOf(s, "fence_cost_micros_total", { tenant: b.id })).toBe(0);
    // The ledger agrees with the counter: A's chat tokens equal what the fake provider billed.
    const billed = llm.charges.reduce((sum, c) => sum + c.prompt_tokens + c.completion_tokens, 0);
    expect(sumOf(s, "fence_tokens_total", { tenant: a.id, feature: "chat" })).toBe(billed);
  });

  it("counts cache hits and misses by cache and tenant", async () => {
    const s = await scrape();
    expect(sumOf(s, "fence_cache_requests_total", { tenant: a.id, cache: "query_embeddings", result: "hit" })).toBeGreaterThanOrEqual(1);
    expect(sumOf(s, "fence_cache_requests_total", { tenant: a.id, cache: "query_embeddings", result: "miss" })).toBeGreaterThanOrEqual(1);
    expect(sumOf(s, "fence_cache_requests_total", { tenant: b.id })).toBe(0);
  });

  it("reports the queue depth from the database, then the jobs' wait once workers run them", async () => {
    let s = await scrape();
    expect(sumOf(s, "fence_job_queue_depth", { tenant: a.id, status: "queued", priority: "interactive" })).toBe(3);
    expect(sumOf(s, "fence_job_queue_depth", { tenant: b.id })).toBe(0);
    expect(sumOf(s, "fence_job_wait_seconds_count", { tenant: a.id })).toBe(0);

    fence.fence.jobRunner.start(1, 0);
    try {
      for (let i = 0; i < 400; i++) {
        s = await scrape();
        if (sumOf(s, "fence_jobs_finished_total", { outcome: "succeeded" }) >= 3) break;
        await sleep(50);
      }
    } finally {
      await fence.fence.jobRunner.stop();
    }
    s = await scrape();
    expect(sumOf(s, "fence_jobs_finished_total", { kind: "ingest_document", outcome: "succeeded" })).toBe(3);
    expect(sumOf(s, "fence_job_queue_depth", { tenant: a.id })).toBe(0);
    expect(sumOf(s, "fence_job_wait_seconds_count", { tenant: a.id, priority: "interactive" })).toBe(3);
    expect(sumOf(s, "fence_job_wait_seconds_sum", { tenant: a.id })).toBeGreaterThan(0);
    expect(sumOf(s, "fence_job_wait_seconds_count", { tenant: b.id })).toBe(0);
  }, 60_000);

  it("shows the LLM lane's calls in flight while one is held, then the breaker open after a failure", async () => {
    const release = llm.holdChat();
    const pending = fence.request("POST", "/v1/chat", { key: a.key, json: { question: "What does the refund policy say about timing?" } });
    let inFlight = 0;
    for (let i = 0; i < 200 && inFlight === 0; i++) {
      inFlight = sumOf(await scrape(), "fence_provider_lane_in_flight", { provider: "llm" });
      if (inFlight === 0) await sleep(25);
    }
    expect(inFlight).toBe(1);
    release();
    expect((await pending).status).toBe(200);
    let s = await scrape();
    expect(sumOf(s, "fence_provider_lane_in_flight", { provider: "llm" })).toBe(0);
    expect(sumOf(s, "fence_provider_breaker_state", { provider: "llm" })).toBe(0);

    llm.failNext("/v1/chat/completions", 500, 1);
    expect(await as(a, "POST", "/v1/chat", { question: "Is express shipping refundable?" })).toBe(502);
    expect(await as(a, "POST", "/v1/chat", { question: "Can I get a refund after 40 days?" })).toBe(503);
    s = await scrape();
    expect(sumOf(s, "fence_provider_breaker_state", { provider: "llm" })).toBe(2);
    expect(sumOf(s, "fence_http_request_errors_total", { tenant: a.id, route: "/v1/chat", code: "upstream_error" })).toBe(1);
    expect(sumOf(s, "fence_http_request_errors_total", { tenant: a.id, route: "/v1/chat", code: "provider_unavailable" })).toBe(1);
  }, 60_000);

  it("puts each tenant's id only on series of what that tenant did", async () => {
    const s = await scrape();
    const ofB = s.filter((x) => x.labels.tenant === b.id && x.value > 0);
    expect(new Set(ofB.map((x) => x.name.replace(/_(bucket|sum|count)$/, "")))).toEqual(
      new Set(["fence_http_request_duration_seconds", "fence_http_request_errors_total"]),
    );
    expect(labelValues(s, "tenant")).toEqual(new Set([a.id, b.id, "none"]));
    // The names of the tenants are never label values.
    const text = await (await fence.request("GET", "/metrics", { key: ADMIN_KEY })).text();
    expect(text).not.toContain("metrics-a");
    expect(text).not.toContain("metrics-b");
  });
});
