import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeOpenAI, type FakeOpenAI } from "../../support/fake-openai.js";
import { backends, TestFence, type TestTenant } from "../../support/harness.js";
import { chargedTotals, counters, ledgerRows, parseSse, reservationCount } from "../../support/metering-helpers.js";

/**
 * The fault test: the provider answers 429 and 500 storms (some recovered by Fence's retries,
 * some not) and drops streams mid-way. Whatever happens, the ledger must equal exactly what the
 * provider says it charged: every failed attempt is a `failed` row at no cost, every successful
 * retry links to its first attempt, nothing is counted twice, and no budget stays reserved.
 */
const COMPLETIONS = "/v1/chat/completions";
const MAX_RETRIES = 2;

type Scenario = { name: string; stream: boolean; setup: (llm: FakeOpenAI) => void; expectOutcome: "ok" | "failed" };

const SCENARIOS: Scenario[] = [
  { name: "plain", stream: false, setup: () => undefined, expectOutcome: "ok" },
  { name: "429 storm within retries", stream: false, setup: (llm) => llm.failNext(COMPLETIONS, 429, MAX_RETRIES), expectOutcome: "ok" },
  { name: "500 storm beyond retries", stream: false, setup: (llm) => llm.failNext(COMPLETIONS, 500, MAX_RETRIES + 1), expectOutcome: "failed" },
  { name: "stream", stream: true, setup: () => undefined, expectOutcome: "ok" },
  { name: "stream dropped mid-way", stream: true, setup: (llm) => llm.dropStreamAfter(2, 1), expectOutcome: "failed" },
  { name: "stream after one 500", stream: true, setup: (llm) => llm.failNext(COMPLETIONS, 500, 1), expectOutcome: "ok" },
];
const ROUNDS = 5; // 30 chats

describe.each(backends)("metering under provider faults on $name", (backend) => {
  let llm: FakeOpenAI;
  let fence: TestFence;
  let tenant: TestTenant;

  beforeAll(async () => {
    llm = await startFakeOpenAI();
    fence = await TestFence.start(backend, {
      env: { LLM_BASE_URL: llm.url, LLM_MODEL: "big-model", LLM_MAX_OUTPUT_TOKENS: "50", LLM_MAX_RETRIES: String(MAX_RETRIES) },
    });
    tenant = await fence.createTenant();
    await fence.upload(tenant, { title: "Refund policy", text: "Customers can request a refund within 30 days of purchase." });
  });
  afterAll(async () => {
    await fence?.close();
    await llm?.close();
  });

  /** One chat; the outcome as the client sees it (a stream reports failure as an `error` event). */
  async function chatOnce(question: string, stream: boolean): Promise<"ok" | "failed"> {
    const res = await fence.request("POST", "/v1/chat", { key: tenant.key, json: { question, stream } });
    if (!stream) {
      if (res.status === 502) return "failed";
      expect(res.status).toBe(200);
      return "ok";
    }
    expect(res.status).toBe(200);
    const events = parseSse(await res.text());
    return events.some((e) => e.event === "error") ? "failed" : "ok";
  }

  it("keeps the ledger equal to what the provider charged through 429/500 storms and dropped streams", async () => {
    const outcomes: { scenario: string; outcome: string }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, scenario] of SCENARIOS.entries()) {
        scenario.setup(llm);
        const outcome = await chatOnce(`What is the refund window? (round ${round} case ${i})`, scenario.stream);
        outcomes.push({ scenario: scenario.name, outcome });
      }
    }
    // Each scenario ended as scripted (a drop before the headers flushed would be retried, not seen here).
    for (const [i, scenario] of SCENARIOS.entries()) {
      const seen = outcomes.filter((o) => o.scenario === scenario.name).map((o) => o.outcome);
      expect(seen, scenario.name).toEqual(Array(ROUNDS).fill(SCENARIOS[i]!.expectOutcome));
    }

    const rows = await ledgerRows(fence, tenant, "chat");
    const charged = rows.filter((r) => r.status === "charged");
    const failed = rows.filter((r) => r.status === "failed");

    // The ledger equals the provider's bill, exactly.
    expect(charged).toHaveLength(llm.charges.length);
    expect(charged.reduce((s, r) => s + r.inputTokens, 0)).toBe(llm.charges.reduce((s, c) => s + c.prompt_tokens, 0));
    expect(charged.reduce((s, r) => s + r.outputTokens, 0)).toBe(llm.charges.reduce((s, c) => s + c.completion_tokens, 0));
    expect(charged.every((r) => !r.usageEstimated && r.model === "big-model")).toBe(true);
    expect(llm.charges.every((c) => c.model === "big-model")).toBe(true);

    // Every provider request that was not billed is a failed row with no charge.
    const providerCalls = llm.requests.filter((r) => r.path === COMPLETIONS).length;
    expect(charged.length + failed.length).toBe(providerCalls);
    for (const r of failed) expect(r).toMatchObject({ costMicros: 0, inputTokens: 0, outputTokens: 0 });
    expect(failed.every((r) => (r.error ?? "").length > 0)).toBe(true);
    // 429×2 and 500×3 and one 500 per round, plus the dropped stream.
    expect(failed).toHaveLength(ROUNDS * (MAX_RETRIES + (MAX_RETRIES + 1) + 1 + 1));

    // Successful retries point at their first failed attempt, which exists.
    const byEventId = new Map(rows.map((r) => [r.eventId, r]));
    const retried = charged.filter((r) => r.retryOf);
    expect(retried).toHaveLength(ROUNDS * 2); // the 429 storm and the stream after one 500
    for (const r of retried) {
      expect(r.retryOf).toBe(`${r.eventId}:attempt-1`);
      expect(byEventId.get(r.retryOf!)?.status).toBe("failed");
    }

    // Nothing counted twice; counters equal the ledger; nothing left reserved.
    expect(new Set(rows.map((r) => r.eventId)).size).toBe(rows.length);
    expect(rows.every((r) => r.duplicateCount === 0)).toBe(true);
    const all = chargedTotals(await ledgerRows(fence, tenant));
    const { day, month } = await counters(fence, tenant);
    expect(day).toEqual({ tokens: all.tokens, costMicros: all.costMicros });
    expect(month).toEqual({ tokens: all.tokens, costMicros: all.costMicros });
    expect(await reservationCount(fence, tenant)).toBe(0);
  });

  it("waits at least the provider's Retry-After before retrying a 429", async () => {
    llm.failNext(COMPLETIONS, 429, 1, { "retry-after": "1" });
    const started = Date.now();
    const outcome = await chatOnce("What is the refund window? (retry-after)", false);
    expect(outcome).toBe("ok");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    const row = (await ledgerRows(fence, tenant, "chat")).find((r) => r.eventId.endsWith(":chat") && r.retryOf && r.occurredAt.getTime() >= started - 1000);
    expect(row).toMatchObject({ status: "charged", inputTokens: llm.charges.at(-1)!.prompt_tokens });
  });
});
