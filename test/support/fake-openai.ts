import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * A local OpenAI-compatible server for tests, the isolation eval and benchmarks: Fence's real
 * `openai` client talks to it over HTTP. It implements `/v1/chat/completions` (plain and streamed,
 * with `stream_options.include_usage`) and `/v1/embeddings` (deterministic vectors from hashed
 * words, so similar texts get similar vectors). Failures can be scripted per endpoint; streams can
 * be slowed or dropped mid-way; `charges` is the fake's own bill, for reconciling the ledger.
 */
export interface RecordedRequest {
  path: string;
  body: Record<string, unknown>;
}

/** What the fake "billed": one entry per completed chat response that reported usage. */
export interface FakeCharge {
  model: string;
  prompt_tokens: number;
  completion_tokens: number;
}

export interface FakeOpenAI {
  url: string;
  requests: RecordedRequest[];
  /**
   * Chat usage the fake reported, i.e. what a real provider would bill: non-stream responses, and
   * streams that delivered their final usage chunk. Dropped or abandoned streams are not here.
   */
  charges: FakeCharge[];
  /**
   * The next `count` requests to `path` answer with `status` (e.g. 429, 500). `headers` replaces the
   * default `retry-after-ms: 1` (e.g. `{ "retry-after": "1" }`).
   */
  failNext(path: "/v1/chat/completions" | "/v1/embeddings", status: number, count?: number, headers?: Record<string, string>): void;
  /** The next `count` streamed chat responses send `nTokens` tokens, then the connection is destroyed. */
  dropStreamAfter(nTokens: number, count?: number): void;
  /** Delay between streamed tokens (lets a client abandon a stream mid-way). Default 0. */
  setStreamDelay(ms: number): void;
  /**
   * Holds every chat completion request (after recording it) until the returned `release` is
   * called, so a test can see what is in flight at one instant.
   */
  holdChat(): () => void;
  /** Replaces the chat answer; receives the user prompt. Default: cite document [1]. */
  setAnswer(fn: (prompt: string) => string): void;
  close(): Promise<void>;
}

export async function startFakeOpenAI(options: { embeddingDimensions?: number } = {}): Promise<FakeOpenAI> {
  const dims = options.embeddingDimensions ?? 64;
  const requests: RecordedRequest[] = [];
  const failures = new Map<string, { status: number; count: number; headers: Record<string, string> }>();
  const charges: FakeCharge[] = [];
  const drops = { nTokens: 0, count: 0 };
  let streamDelayMs = 0;
  let gate: Promise<void> | undefined;
  let answer: (prompt: string) => string = (prompt) =>
    prompt.includes('<document id="1"') ? "According to the documents, the answer is in [1]." : "I don't know based on your documents.";

  const server: Server = createServer(async (req, res) => {
    const body = await readJson(req);
    const path = (req.url ?? "").split("?")[0]!;
    requests.push({ path, body });
    const failure = failures.get(path);
    if (failure && failure.count > 0) {
      failure.count--;
      return sendJson(res, failure.status, { error: { message: `scripted failure ${failure.status}`, type: "server_error" } }, failure.headers);
    }
    if (path === "/v1/embeddings") {
      const inputs = Array.isArray(body.input) ? (body.input as string[]) : [String(body.input)];
      return sendJson(res, 200, {
        object: "list",
        model: body.model,
        data: inputs.map((text, index) => ({ object: "embedding", index, embedding: hashEmbedding(text, dims) })),
        usage: { prompt_tokens: inputs.join(" ").split(/\s+/).length, total_tokens: inputs.join(" ").split(/\s+/).length },
      });
    }
    if (path === "/v1/chat/completions") {
      if (gate) await gate;
      const messages = body.messages as { role: string; content: string }[];
      const prompt = messages[messages.length - 1]?.content ?? "";
      const text = answer(prompt);
      const usage = {
        prompt_tokens: Math.ceil(messages.map((m) => m.content).join(" ").length / 4),
        completion_tokens: text.split(/\s+/).length,
        total_tokens: 0,
      };
      usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
      const model = String(body.model);
      if (!body.stream) {
        charges.push({ model, prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens });
        return sendJson(res, 200, {
          id: "chatcmpl-fake",
          object: "chat.completion",
          created: Math.floor(Date.now() / 1000),
          model: body.model,
          choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
          usage,
        });
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.flushHeaders();
      const base = { id: "chatcmpl-fake", object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model: body.model };
      const dropAfter = drops.count > 0 ? (drops.count--, drops.nTokens) : Infinity;
      // A drop happens after what was sent has reached the client: a true mid-stream failure.
      const drop = async () => {
        await sleep(20);
        res.socket?.destroy();
      };
      let sent = 0;
      for (const piece of text.match(/\S+\s*/g) ?? []) {
        if (sent === dropAfter) return drop();
        if (streamDelayMs > 0) await sleep(streamDelayMs);
        if (res.destroyed) return; // the client went away: nothing more is produced or billed
        res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`);
        sent++;
      }
      if (sent === dropAfter) return drop();
      res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\n`);
      const wantsUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage;
      if (wantsUsage && !res.destroyed) {
        res.write(`data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`);
        charges.push({ model, prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens });
      }
      res.end("data: [DONE]\n\n");
      return;
    }
    sendJson(res, 404, { error: { message: "not found" } });
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    charges,
    failNext(path, status, count = 1, headers = { "retry-after-ms": "1" }) {
      failures.set(path, { status, count, headers });
    },
    dropStreamAfter(nTokens, count = 1) {
      drops.nTokens = nTokens;
      drops.count = count;
    },
    setStreamDelay(ms) {
      streamDelayMs = ms;
    },
    holdChat() {
      let release!: () => void;
      gate = new Promise<void>((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release();
      };
    },
    setAnswer(fn) {
      answer = fn;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Bag-of-hashed-words vector: texts sharing words point the same way. */
export function hashEmbedding(text: string, dims: number): number[] {
  const v = new Array<number>(dims).fill(0);
  for (const word of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    const h = createHash("sha256").update(word).digest();
    v[h.readUInt32BE(0) % dims]! += 1;
    v[h.readUInt32BE(4) % dims]! += 0.5;
  }
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
  return v.map((x) => x / norm);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
  } catch {
    return {};
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}
