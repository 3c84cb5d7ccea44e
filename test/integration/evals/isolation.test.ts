import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCorpus, type Corpus } from "../../../evals/isolation/corpus.js";
import type { Party, RecordedExchange } from "../../../evals/isolation/exchange.js";
import { LeakDetector, needlesOf, type TenantTruth } from "../../../evals/isolation/leak-detector.js";
import { judgeWindow, summarizeLatencies } from "../../../evals/isolation/availability/judge.js";
import { VictimLoad, type VictimWindow } from "../../../evals/isolation/availability/victim.js";
import { MODES } from "../../../evals/isolation/modes.js";
import { runSuite } from "../../../evals/isolation/suite.js";
import { startFakeOpenAI, type FakeOpenAI } from "../../support/fake-openai.js";
import { backends, defaultEmbeddings } from "../../support/harness.js";
import { warmUntilSteady } from "../../support/warm-up.js";

/**
 * The isolation eval's own guarantees, fast: its detector sees what it must (split SSE tokens,
 * headers) and ignores what it must (reflections, the tenant's own uploads), and against a real
 * instance it reports zero leaks with the locks on while detecting leaks on the document, search,
 * chat, SSE and LLM paths once the locks are off. `npm run eval:isolation` runs the full suite.
 */

const A: Party = { label: "A", tenant: "A", key: "k-a" };
const B: Party = { label: "B", tenant: "B", key: "k-b" };

const truthOfA: TenantTruth = {
  owner: "A",
  tenantId: "11111111-1111-4111-8111-111111111111",
  tenantName: "acme-test",
  apiKeys: ["fence_prod_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
  keyIds: ["22222222-2222-4222-8222-222222222222"],
  documents: [{ id: "33333333-3333-4333-8333-333333333333", title: "Executive pay", canaries: ["CANARY-ACME-t1-COMP"] }],
  jobs: [{ id: "55555555-5555-4555-8555-555555555555", title: "Board minutes", canaries: ["CANARY-ACME-t1-JOB"] }],
  chunks: [{ id: "44444444-4444-4444-8444-444444444444", text: "The CFO earns a base salary of $312,750 per year & gets a bonus in March." }],
  secrets: ["$312,750"],
};

function exchange(party: Party, request: { url?: string; body?: string; method?: string }, body: string, headers: Record<string, string> = {}, status = 200): RecordedExchange {
  return {
    party,
    request: { method: request.method ?? "POST", url: request.url ?? "http://127.0.0.1/v1/search", headers: {}, body: request.body ?? "" },
    status,
    headers: { "content-type": "application/json", ...headers },
    body,
  };
}

describe("isolation eval leak detector", () => {
  const needles = needlesOf(truthOfA, "Globex deploy runbook text");

  it("flags a canary that another tenant receives, even split across SSE token events", () => {
    const sse = ['event: token\ndata: {"text":"CANARY-"}', 'event: token\ndata: {"text":"ACME-t1-COMP "}', 'event: done\ndata: {"cached":false}'].join("\n\n");
    const findings = new LeakDetector(needles).scan(exchange(B, {}, sse, { "content-type": "text/event-stream" }));
    expect(findings.map((f) => [f.needle.kind, f.where])).toContainEqual(["canary", "sse answer"]);
  });

  it("flags chunk text that reaches another tenant XML-escaped inside an echoed prompt", () => {
    const echoed = JSON.stringify({ answer: "<document id=\"1\">The CFO earns a base salary of $312,750 per year &amp; gets a bonus</document>" });
    const kinds = new LeakDetector(needles).scan(exchange(B, {}, echoed)).map((f) => f.needle.kind);
    expect(kinds).toEqual(expect.arrayContaining(["secret", "chunk-text"]));
  });

  it("flags another tenant's job id and the title of its queued upload", () => {
    const listed = JSON.stringify({ jobs: [{ id: truthOfA.jobs[0]!.id, title: "Board minutes" }] });
    const kinds = new LeakDetector(needles).scan(exchange(B, { url: "http://127.0.0.1/v1/jobs", method: "GET" }, listed)).map((f) => f.needle.kind);
    expect(kinds.sort()).toEqual(["job-id", "title"]);
  });

  it("flags a needle in a response header, whatever the status", () => {
    const findings = new LeakDetector(needles).scan(exchange(B, {}, "{}", { "x-debug-tenant": truthOfA.tenantId }, 401));
    expect(findings.map((f) => f.needle.kind)).toEqual(["tenant-id"]);
  });

  it("does not count a needle the party sent in the same request, but still counts the others", () => {
    const url = `http://127.0.0.1/v1/documents/${truthOfA.documents[0]!.id}`;
    const echoOnly = exchange(B, { url, method: "GET" }, JSON.stringify({ error: { message: `No route for ${url}` } }), {}, 404);
    expect(new LeakDetector(needles).scan(echoOnly)).toEqual([]);
    const realLeak = exchange(B, { url, method: "GET" }, JSON.stringify({ id: truthOfA.documents[0]!.id, title: "Executive pay" }));
    expect(new LeakDetector(needles).scan(realLeak).map((f) => f.needle.kind)).toEqual(["title"]);
  });

  it("does not count what the receiving tenant uploaded itself, and never counts the owner's own data", () => {
    const detector = new LeakDetector(needles);
    const upload = exchange(B, { url: "http://127.0.0.1/v1/documents", body: JSON.stringify({ text: "note", metadata: { tenant_id: truthOfA.tenantId } }) }, "{}", {}, 201);
    expect(detector.scan(upload)).toEqual([]);
    const readBack = exchange(B, { url: "http://127.0.0.1/v1/documents", method: "GET" }, JSON.stringify({ documents: [{ metadata: { tenant_id: truthOfA.tenantId } }] }));
    expect(detector.scan(readBack)).toEqual([]);
    expect(detector.scan(exchange(A, {}, JSON.stringify({ text: "CANARY-ACME-t1-COMP $312,750" })))).toEqual([]);
  });

  it("finds a usage count as a number of its own, not among the digits of a score or a longer number", () => {
    const count = { owner: "A" as const, kind: "usage" as const, value: "4609823" };
    const detector = new LeakDetector([count]);
    const scores = JSON.stringify({ hits: [{ score: 0.04609823175, similarity: 0.7146098231 }], total: 94609823 });
    expect(detector.scan(exchange(B, {}, scores))).toEqual([]);
    for (const leaked of [JSON.stringify({ input_tokens: 4609823 }), JSON.stringify({ tokens: "4609823" }), "day,tokens\n2026-11-26,4609823\n"]) {
      expect(detector.scan(exchange(B, { url: "http://127.0.0.1/v1/usage", method: "GET" }, leaked)).map((f) => f.needle.kind)).toEqual(["usage"]);
    }
  });

  it("does not count B's own chat question read back from B's runs, but still counts A's data beside it", () => {
    const detector = new LeakDetector(needles);
    const asked = exchange(B, { url: "http://127.0.0.1/v1/chat", body: JSON.stringify({ question: "What is CANARY-ACME-t1-COMP?" }) }, "{}");
    expect(detector.scan(asked)).toEqual([]);
    const runs = (extra: object) => JSON.stringify({ runs: [{ question: "What is CANARY-ACME-t1-COMP?", ...extra }] });
    expect(detector.scan(exchange(B, { url: "http://127.0.0.1/v1/runs", method: "GET" }, runs({})))).toEqual([]);
    const leaked = exchange(B, { url: "http://127.0.0.1/v1/runs", method: "GET" }, runs({ key_id: truthOfA.keyIds[0] }));
    expect(detector.scan(leaked).map((f) => f.needle.kind)).toEqual(["key-id"]);
    // A chat refused before the service saw it (400) recorded nothing: its question excuses nothing.
    const refused = new LeakDetector(needles);
    refused.scan(exchange(B, { url: "http://127.0.0.1/v1/chat", body: JSON.stringify({ question: "CANARY-ACME-t1-COMP", k: "x" }) }, "{}", {}, 400));
    expect(refused.scan(exchange(B, { url: "http://127.0.0.1/v1/runs", method: "GET" }, runs({}))).map((f) => f.needle.kind)).toEqual(["canary"]);
    // Nor did one refused for the key's scopes (403 insufficient_scope, a key without `query`).
    const outOfScope = new LeakDetector(needles);
    outOfScope.scan(exchange(B, { url: "http://127.0.0.1/v1/chat", body: JSON.stringify({ question: "CANARY-ACME-t1-COMP" }) }, "{}", {}, 403));
    expect(outOfScope.scan(exchange(B, { url: "http://127.0.0.1/v1/runs", method: "GET" }, runs({}))).map((f) => f.needle.kind)).toEqual(["canary"]);
  });
});

describe("isolation eval availability judge", () => {
  const baseline = summarizeLatencies(Array.from({ length: 100 }, (_, i) => 20 + (i % 10)));
  const window = (latencies: number[], extra: Partial<VictimWindow> = {}): VictimWindow => ({
    latencies,
    searches: latencies.length,
    errors: [],
    probes: 500,
    worstStallMs: 5,
    stallOngoing: false,
    seconds: 7,
    ...extra,
  });
  const steady = Array.from({ length: 100 }, (_, i) => 25 + (i % 20));

  it("passes a victim within 2× its baseline p99, error-free, with no long stall", () => {
    expect(judgeWindow(baseline, window(steady))).toMatchObject({ passed: true, failures: [] });
  });

  it("fails a p99 over 2× the baseline, a victim error, and a stall over 1 s, naming each", () => {
    const slow = [...steady.slice(2), 90, 95];
    expect(judgeWindow(baseline, window(slow)).failures).toEqual([expect.stringContaining("victim p99 90 ms > 2× baseline 29 ms")]);
    expect(judgeWindow(baseline, window(steady, { errors: ["search: timeout", "search: timeout"] })).failures).toEqual(["2 victim requests failed (search: timeout ×2)"]);
    expect(judgeWindow(baseline, window(steady, { worstStallMs: 15_000, stallOngoing: true })).failures).toEqual(["event loop blocked ≥ 15.0 s > 1.00 s"]);
  });

  it("offers a second window only when the p99 rule alone failed: never for an error or a stall", () => {
    const slow = [...steady.slice(2), 90, 95];
    expect(judgeWindow(baseline, window(slow)).latencyOnly).toBe(true);
    expect(judgeWindow(baseline, window(slow, { errors: ["search: timeout"] })).latencyOnly).toBe(false);
    expect(judgeWindow(baseline, window(slow, { worstStallMs: 1_500 })).latencyOnly).toBe(false);
    expect(judgeWindow(baseline, window(slow), ["attack still running after 15 s"]).latencyOnly).toBe(false);
    expect(judgeWindow(baseline, window(steady, { errors: ["search: timeout"] })).latencyOnly).toBe(false);
  });

  it("relaxes only the p99 rule, only up to its allowance, for a documented known-open gap", () => {
    const open = { maxRatio: 4, reason: "a documented gap" };
    const slow = [...steady.slice(2), 90, 95]; // p99 90 ms: 3.1× the baseline
    expect(judgeWindow(baseline, window(slow), [], open)).toMatchObject({ passed: true, failures: [], open: expect.stringContaining("a documented gap") });
    const slower = [...steady.slice(2), 150, 160]; // 5.2×: beyond the allowance
    expect(judgeWindow(baseline, window(slower), [], open)).toMatchObject({ passed: false, failures: [expect.stringContaining("victim p99 150 ms")] });
    // Errors and stalls are never relaxed.
    expect(judgeWindow(baseline, window(slow, { errors: ["search: timeout"] }), [], open).passed).toBe(false);
    expect(judgeWindow(baseline, window(slow, { worstStallMs: 1_500 }), [], open).passed).toBe(false);
    // Within the plain rule, nothing is marked open.
    expect(judgeWindow(baseline, window(steady), [], open).open).toBeUndefined();
  });
});

describe.each(backends)("isolation eval against a live instance on $name", (backend) => {
  let llm: FakeOpenAI;
  let corpora: { a: Corpus; b: Corpus };
  const runId = randomBytes(4).toString("hex");
  const mode = (id: number) => MODES.find((m) => m.id === id)!;

  beforeAll(async () => {
    llm = await startFakeOpenAI();
    llm.setAnswer((prompt) => prompt);
    corpora = { a: await loadCorpus("acme", runId), b: await loadCorpus("globex", runId) };
  });
  afterAll(() => llm?.close());

  const chatAttacks = ["chat asks for A's canaries and secrets", "chat asks for A's secrets, streamed", "identical question by A then B (answer cache)"];
  const documentAttacks = ["get A's documents by id", "list documents, following every cursor", "search for A's canaries verbatim"];
  const jobAttacks = ["get A's queued jobs by id", "list jobs by A's batch ids", "B cancels A's queued jobs"];
  const runAttacks = ["read A's runs by request id", "list and page every run list, with A's ids as cursors and filters", "turn A's runs into eval cases"];
  const scopeAttacks = ["scoped keys of B stay in their scope", "B's scoped keys against A's objects", "an expired key"];
  const keyAttacks = ["scope escalation through /v1/keys", "B's owner on A's keys and trail", "a rotated secret past its grace", "a key made by a since-revoked owner key"];
  const settingsAttacks = ["settings beyond the plan", "a flag B's plan leaves out", "A's settings never reach B", "B's owner on A's key by id (PATCH)", "a key raising itself"];
  const consoleAttacks = [
    "B's console session reads only B's documents",
    "console sign-in without its form's token, and a forged session",
    "B's console opens A's documents and jobs by id",
    "B's console deletes A's documents and revokes A's keys by id",
    "B's console finds A's documents by title and asks for A's canaries",
    "cross-site form posts to the console",
    "B's console reads A's runs, settings and audit",
  ];
  const restAttacks = [...jobAttacks, ...runAttacks, ...scopeAttacks, ...keyAttacks, ...settingsAttacks, ...consoleAttacks];

  // Each mode and variant runs once per backend, with every attack the tests below ask of it: an
  // instance and its seeded corpora cost far more than the attacks themselves (an instance per
  // test took over six minutes of the suite). The attacks coexist in one instance as they do in
  // `npm run eval:isolation`; each test then checks the verdicts of its own attacks.
  type Variant = "extractive" | "llm";
  const attacksOfRun: Record<string, string[]> = {
    "1/llm": ["owners get grounded answers", ...chatAttacks],
    "1/extractive": restAttacks,
    "4/extractive": [...documentAttacks, ...restAttacks],
    "5/llm": chatAttacks,
  };
  const runs = new Map<string, Promise<Record<string, string>>>();
  const runOnce = async (modeId: number, variant: Variant, names: string[]): Promise<Record<string, string>> => {
    const suite = await runSuite({
      backend,
      mode: mode(modeId),
      variant,
      embeddings: await defaultEmbeddings(),
      runId,
      corpora,
      llmBaseUrl: llm.url,
      only: (attack) => names.includes(attack.name),
    });
    return Object.fromEntries(suite.results.map((r) => [r.attack.name, r.verdict]));
  };
  const run = async (modeId: number, variant: Variant, names: string[]): Promise<Record<string, string | undefined>> => {
    const key = `${modeId}/${variant}`;
    const planned = attacksOfRun[key];
    if (!planned || names.some((name) => !planned.includes(name))) throw new Error(`list ${names.join(", ")} in attacksOfRun["${key}"]`);
    if (!runs.has(key)) runs.set(key, runOnce(modeId, variant, planned));
    const verdicts = await runs.get(key)!;
    return Object.fromEntries(names.map((name) => [name, verdicts[name]]));
  };

  it("reports no leak on the chat paths with every lock on, and the owners' controls pass", async () => {
    const verdicts = await run(1, "llm", ["owners get grounded answers", ...chatAttacks]);
    expect(verdicts).toEqual({
      "owners get grounded answers": "control ok",
      ...Object.fromEntries(chatAttacks.map((name) => [name, "blocked"])),
    });
  }, 240_000);

  // Not on Citus: see CITUS_NEEDS_THE_FILTER (evals/isolation/modes.ts).
  it.skipIf(backend.name === "citus")("detects document leaks with RLS and the app filter off, while the assertion blocks search", async () => {
    const verdicts = await run(4, "extractive", documentAttacks);
    expect(verdicts).toEqual({
      "get A's documents by id": "leak",
      "list documents, following every cursor": "leak",
      "search for A's canaries verbatim": "blocked (assertion)",
    });
  }, 240_000);

  // Not on Citus: see CITUS_NEEDS_THE_FILTER (evals/isolation/modes.ts).
  it.skipIf(backend.name === "citus")("detects job leaks with RLS and the app filter off, and none with every lock on", async () => {
    expect(await run(1, "extractive", jobAttacks)).toEqual(Object.fromEntries(jobAttacks.map((name) => [name, "blocked"])));
    expect(await run(4, "extractive", jobAttacks)).toEqual(Object.fromEntries(jobAttacks.map((name) => [name, "leak"])));
  }, 240_000);

  // Not on Citus: see CITUS_NEEDS_THE_FILTER (evals/isolation/modes.ts).
  it.skipIf(backend.name === "citus")("detects run-record leaks with RLS and the app filter off, and none with every lock on", async () => {
    expect(await run(1, "extractive", runAttacks)).toEqual(Object.fromEntries(runAttacks.map((name) => [name, "blocked"])));
    expect(await run(4, "extractive", runAttacks)).toEqual(Object.fromEntries(runAttacks.map((name) => [name, "leak"])));
  }, 240_000);

  // The scope and expiry checks need no lock: every attack is blocked with the locks on, on every
  // backend (Citus included), and with every lock off only the key that holds the scope, and so
  // reaches A's objects, may leak — not run on Citus, see CITUS_NEEDS_THE_FILTER.
  it("blocks out-of-scope and expired keys with every lock on", async () => {
    expect(await run(1, "extractive", scopeAttacks)).toEqual(Object.fromEntries(scopeAttacks.map((name) => [name, "blocked"])));
  }, 240_000);

  it.skipIf(backend.name === "citus")("still blocks out-of-scope and expired keys with every lock off, and detects the read key's leak", async () => {
    expect(await run(4, "extractive", scopeAttacks)).toEqual({
      "scoped keys of B stay in their scope": "blocked",
      "B's scoped keys against A's objects": "leak",
      "an expired key": "blocked",
    });
  }, 240_000);

  // The scope check, a rotation's grace and transitive revocation need no lock: every attack is
  // blocked with the locks on, on every backend; with every lock off only B's owner key, which
  // holds the scope and so reaches A's keys and trail, may leak — not run on Citus, see
  // CITUS_NEEDS_THE_FILTER.
  it("blocks key self-service escalation, rotated secrets and revoked keys' offspring with every lock on", async () => {
    expect(await run(1, "extractive", keyAttacks)).toEqual(Object.fromEntries(keyAttacks.map((name) => [name, "blocked"])));
  }, 240_000);

  it.skipIf(backend.name === "citus")("still blocks them with every lock off, and detects the owner key's leak", async () => {
    expect(await run(4, "extractive", keyAttacks)).toEqual({
      "scope escalation through /v1/keys": "blocked",
      "B's owner on A's keys and trail": "leak",
      "a rotated secret past its grace": "blocked",
      "a key made by a since-revoked owner key": "blocked",
    });
  }, 240_000);

  // The platform's fields and a key's own limit are refused before any lock is reached: every
  // attack is blocked with the locks on, on every backend; with every lock off the two data
  // attacks (A's canary persona, A's key changed by id) must leak, and the rest stay blocked (the
  // flag's refusal reads B's plan through the locks, so it is not checked then) — not run on
  // Citus, see CITUS_NEEDS_THE_FILTER.
  it("blocks settings beyond the plan, foreign keys by id and keys raising themselves with every lock on", async () => {
    expect(await run(1, "extractive", settingsAttacks)).toEqual(Object.fromEntries(settingsAttacks.map((name) => [name, "blocked"])));
  }, 240_000);

  it.skipIf(backend.name === "citus")("still blocks the platform's fields and self-raises with every lock off, and detects the data attacks' leaks", async () => {
    expect(await run(4, "extractive", settingsAttacks)).toEqual({
      "settings beyond the plan": "blocked",
      "a flag B's plan leaves out": "blocked",
      "A's settings never reach B": "leak",
      "B's owner on A's key by id (PATCH)": "leak",
      "a key raising itself": "blocked",
    });
  }, 240_000);

  // The console's pages call the same services with the same TenantContext: with the locks on B's
  // session sees, finds, asks about and changes only B's documents, jobs, usage and keys; with every
  // lock off the data attacks leak (the documents list and title search, A's document and job pages
  // by id, the overview and the keys page B's forms render), while Ask stays behind the assembly
  // assertion (a 500 page, never an answer from A's chunks) and the forms' own checks hold whatever
  // the locks: the sign-in's CSRF token, the signed session cookie, and every post's session token
  // (not on Citus, as above).
  it("blocks A's documents, jobs, keys and usage from B's console session, and forms without the session's own token", async () => {
    expect(await run(1, "extractive", consoleAttacks)).toEqual(Object.fromEntries(consoleAttacks.map((name) => [name, "blocked"])));
  }, 240_000);

  it.skipIf(backend.name === "citus")("detects the console pages' leaks with every lock off, and still refuses forged sign-ins, sessions and forms", async () => {
    expect(await run(4, "extractive", consoleAttacks)).toEqual({
      "B's console session reads only B's documents": "leak",
      "console sign-in without its form's token, and a forged session": "blocked",
      "B's console opens A's documents and jobs by id": "leak",
      "B's console deletes A's documents and revokes A's keys by id": "leak",
      "B's console finds A's documents by title and asks for A's canaries": "leak",
      "cross-site form posts to the console": "blocked",
      "B's console reads A's runs, settings and audit": "leak",
    });
  }, 240_000);

  // Not on Citus: see CITUS_NEEDS_THE_FILTER (evals/isolation/modes.ts).
  it.skipIf(backend.name === "citus")("detects leaks through the echoing LLM, plain and streamed, once the assertion is off too", async () => {
    const verdicts = await run(5, "llm", chatAttacks);
    expect(verdicts).toEqual(Object.fromEntries(chatAttacks.map((name) => [name, "leak"])));
  }, 240_000);
});

describe("isolation eval availability warm-up", () => {
  const blocks = (medians: number[]) => {
    let i = 0;
    return async () => medians[Math.min(i++, medians.length - 1)]!;
  };

  it("keeps warming while the victim still gets faster, and stops once two blocks agree", async () => {
    // A fresh process: slow, then settling. Two early blocks that agree do not end it (at least four).
    await expect(warmUntilSteady(blocks([40, 39, 30, 22, 21, 21]))).resolves.toEqual({ blocks: 5, medians: [40, 39, 30, 22, 21], settled: true });
  });

  it("gives up after its block limit on a victim that never settles, and says so", async () => {
    const result = await warmUntilSteady(blocks([10, 20, 10, 20, 10, 20]), { maxBlocks: 6 });
    expect(result).toMatchObject({ blocks: 6, settled: false });
  });
});

describe("isolation eval availability victim", () => {
  it("never repeats a query across windows, so no window is served from the query-embedding cache", async () => {
    const queries: string[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      req.on("end", () => {
        if (req.url === "/v1/search") queries.push((JSON.parse(body) as { query: string }).query);
        res.end("{}");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      for (let w = 0; w < 2; w++) {
        const victim = new VictimLoad(url, "k", { searchIntervalMs: 5, probeIntervalMs: 50, timeoutMs: 2000 });
        victim.start();
        while (victim.sampleCount < 10) await new Promise((r) => setTimeout(r, 10));
        await victim.stop();
      }
    } finally {
      server.close();
    }
    expect(queries.length).toBeGreaterThanOrEqual(20);
    expect(new Set(queries).size).toBe(queries.length);
  });
});
