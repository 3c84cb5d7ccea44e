import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { startFakeOpenAI, type FakeOpenAI } from "../../test/support/fake-openai.js";
import { seededRandom } from "../stats.js";

/**
 * The LLM for the benchmark: the project's fake OpenAI-compatible server (test/support), behind a
 * loopback forwarder that holds every chat completion for a while before passing it on, so a
 * completion takes `delayMs` like a real provider: exactly, or spread evenly over ±`jitter`·delayMs
 * (seeded). The fake has no delay knob for non-streamed completions; the forwarder adds one without
 * a second implementation of the response shapes. Fence's real `openai` client talks to the
 * forwarder over HTTP.
 */
export interface SlowProvider {
  /** Base URL for LLM_BASE_URL. */
  url: string;
  /** Chat completions answered so far. */
  readonly completions: number;
  close(): Promise<void>;
}

export async function startSlowProvider(delayMs: number, jitter = 0, seed = 1): Promise<SlowProvider> {
  const fake: FakeOpenAI = await startFakeOpenAI();
  const random = seededRandom(seed);
  const upstream = new URL(fake.url).origin;
  let completions = 0;
  const server: Server = createServer((req, res) => {
    forward(req)
      .then(({ status, contentType, body }) => {
        res.writeHead(status, { "content-type": contentType });
        res.end(body);
      })
      .catch((error: unknown) => {
        res.writeHead(502, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: `forwarder: ${(error as Error).message}` } }));
      });
  });

  async function forward(req: IncomingMessage): Promise<{ status: number; contentType: string; body: Buffer }> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const isChat = (req.url ?? "").startsWith("/v1/chat/completions");
    if (isChat) await sleep(delayMs * (1 + jitter * (2 * random() - 1)));
    const response = await fetch(`${upstream}${req.url ?? "/"}`, {
      method: req.method,
      headers: { "content-type": req.headers["content-type"] ?? "application/json" },
      body: req.method === "GET" || req.method === "HEAD" ? undefined : Buffer.concat(chunks),
    });
    const body = Buffer.from(await response.arrayBuffer());
    // The fake records every request body; the benchmark never reads them, so they are not kept.
    fake.requests.length = 0;
    fake.charges.length = 0;
    if (isChat && response.ok) completions++;
    return { status: response.status, contentType: response.headers.get("content-type") ?? "application/json", body };
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    get completions() {
      return completions;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fake.close();
    },
  };
}

/**
 * Fence's settings for the slow provider, as the noisy and flood benches use it: the provider lane
 * is what is contended, so no call is refused for waiting, timed out or retried — the benches
 * measure waiting, not shedding.
 */
export function slowProviderSettings(url: string, concurrency: number): Record<string, string> {
  return {
    LLM_BASE_URL: url,
    LLM_MODEL: "bench-llm",
    LLM_API_KEY: "bench",
    LLM_MAX_CONCURRENCY: String(concurrency),
    LLM_QUEUE_TIMEOUT_MS: "300000",
    LLM_TIMEOUT_MS: "300000",
    LLM_MAX_RETRIES: "0",
  };
}
