import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeOpenAI, type FakeOpenAI } from "../../support/fake-openai.js";
import { backends, serveOnLoopback, TestFence, type TestTenant } from "../../support/harness.js";
import { counters, chargedTotals, eventually, ledgerRows, parseSse, reservationCount } from "../../support/metering-helpers.js";

/**
 * Streamed answers over a real socket are metered from the provider's final usage chunk; a stream
 * the client abandons after the first token is still charged, for what was produced (estimated).
 */
const LONG_ANSWER = `${Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ")} [1]`;

describe.each(backends)("streamed chat metering on $name", (backend) => {
  let llm: FakeOpenAI;
  let fence: TestFence;
  let server: { url: string; close(): Promise<void> };
  let tenant: TestTenant;
  const streamChat = (question: string, signal?: AbortSignal) =>
    fetch(`${server.url}/v1/chat`, {
      method: "POST",
      headers: { authorization: `Bearer ${tenant.key}`, "content-type": "application/json" },
      body: JSON.stringify({ question, stream: true }),
      signal,
    });

  beforeAll(async () => {
    llm = await startFakeOpenAI();
    fence = await TestFence.start(backend, { env: { LLM_BASE_URL: llm.url, LLM_MODEL: "big-model", LLM_MAX_OUTPUT_TOKENS: "50" } });
    server = await serveOnLoopback(fence.fence);
    tenant = await fence.createTenant();
    await fence.upload(tenant, { title: "Refund policy", text: "Customers can request a refund within 30 days of purchase." });
  });
  afterAll(async () => {
    await server?.close();
    await fence?.close();
    await llm?.close();
  });

  it("charges a completed stream exactly the provider's final usage", async () => {
    const res = await streamChat("How long is the refund window?");
    expect(res.status).toBe(200);
    const events = parseSse(await res.text());
    const done = events.find((e) => e.event === "done")!.data as { usage: { input_tokens: number; output_tokens: number } };
    const charge = llm.charges.at(-1)!;
    expect(charge.model).toBe("big-model");
    expect(done.usage).toMatchObject({ input_tokens: charge.prompt_tokens, output_tokens: charge.completion_tokens });

    const rows = await ledgerRows(fence, tenant, "chat");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      status: "charged",
      model: "big-model",
      inputTokens: charge.prompt_tokens,
      outputTokens: charge.completion_tokens,
      usageEstimated: false,
    });
    expect(await reservationCount(fence, tenant)).toBe(0);
  });

  it("charges an abandoned stream for what was produced, marked as estimated", async () => {
    llm.setAnswer(() => LONG_ANSWER);
    llm.setStreamDelay(100);
    const chargesBefore = llm.charges.length;
    try {
      const abort = new AbortController();
      const res = await streamChat("When do refunds go back to the card?", abort.signal);
      const reader = res.body!.getReader();
      let received = "";
      while (!received.includes("event: token")) {
        const { value, done } = await reader.read();
        if (done) throw new Error("stream ended before the first token");
        received += new TextDecoder().decode(value);
      }
      abort.abort();

      const row = await eventually(async () => (await ledgerRows(fence, tenant, "chat")).find((r) => r.usageEstimated), 3000);
      expect(row).toMatchObject({ status: "charged", model: "big-model" });
      expect(row.inputTokens).toBeGreaterThan(0);
      expect(row.outputTokens).toBeGreaterThan(0);
      // Far less than the whole answer: only what arrived before the client went away.
      expect(row.outputTokens).toBeLessThan(Math.ceil(LONG_ANSWER.length / 3));
      await eventually(async () => ((await reservationCount(fence, tenant)) === 0 ? true : undefined));
      // The provider never sent its final usage for this stream, so the fake billed nothing.
      expect(llm.charges.length).toBe(chargesBefore);
      const all = chargedTotals(await ledgerRows(fence, tenant));
      expect((await counters(fence, tenant)).day.tokens).toBe(all.tokens);
    } finally {
      llm.setStreamDelay(0);
    }
  });
});
