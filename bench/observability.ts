import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { LocalUseEmbeddings } from "../src/embeddings/local-use.js";
import { startFakeOpenAI, type FakeOpenAI } from "../test/support/fake-openai.js";
import { articles, QuestionStream } from "./noisy/workload.js";
import { ClientThread } from "./observability/client.js";
import { BenchInstance, VARIANTS, type HttpResult, type RunWriteTiming, type Variant } from "./observability/instance.js";
import { parseObsOptions, type ObsOptions } from "./observability/options.js";
import { compare, roundRobin, type Comparison } from "./observability/paired.js";
import { printReport, type EndpointResult, type ObsReport } from "./observability/print.js";
import { timeAccessLogLines } from "./observability/probes.js";
import { progress, runBenchmark } from "./report.js";
import { since } from "./stats.js";
import type { ChatBody } from "../test/support/api-types.js";

/**
 * `npm run bench:observability [-- --quick] [--requests=N --warmup=N --docs=N --components=true|false
 * --search=true|false --backend=pglite|postgres --seed=N]` (see observability/options.ts).
 *
 * Issue #6: what structured logging and run records add to a chat request. Fence is built several
 * times in one process — ON (the defaults: logs at `info` to a file, run records on), OFF (logger
 * `silent`, `recordRuns: false`), and in the full run also "logging only", "run records only" and
 * a second OFF as an A/A control — on one shared embedding model and one fake LLM with no delay.
 * A client on its own thread sends one request at a time over real HTTP, the instances taking
 * turns request by request, so the machine's noise falls on all alike. The run-record writes are
 * timed where they happen and the logging work on its own, to say where the added time goes.
 * The run record is written after the chat has responded (RunRecords), so each request is sent
 * only once the previous instance's write has ended: the write's time is shown, not hidden in the
 * next request. Exits 0 whether or not the goal is met (the verdict is printed); it
 * fails only when the bench could not measure what it claims (errors, cache hits, no LLM call, an
 * ON instance that wrote nothing, an OFF instance that wrote something).
 */
async function main(): Promise<void> {
  const started = performance.now();
  const startedAt = new Date();
  const options = parseObsOptions(process.argv.slice(2), process.env);
  const loadAtStart = loadavg()[0]!;
  const variants: Variant[] = [
    "off",
    ...(options.components ? (["control", "logs", "runs"] as const) : []),
    "on",
  ];

  progress("loading the local embedding model (1 thread), shared by every instance");
  const t0 = performance.now();
  const model = await LocalUseEmbeddings.load({ threads: 1 });
  const modelLoadMs = since(t0);
  const logDir = await mkdtemp(join(tmpdir(), "fence-bench-obs-"));
  let llm: FakeOpenAI | undefined;
  const client = ClientThread.start();
  const instances: Partial<Record<Variant, BenchInstance>> = {};
  try {
    llm = await startFakeOpenAI();
    const docs = articles(options.docs, options.seed);
    for (const v of variants) {
      progress(`${v}: building Fence on ${options.backend}, seeding ${options.docs} articles`);
      const instance = await BenchInstance.start(v, options, model, llm.url, logDir, client);
      instances[v] = instance;
      await instance.setUpTenant(docs);
    }
    const byVariant = instances as Record<Variant, BenchInstance>;
    const backendLabel = await byVariant.off.backendLabel();
    const total = options.warmup + options.requests;
    const fake = llm;

    // One question per round, the same for every instance (each has its own caches).
    const chatQuestions = questions("chat", total, options.seed + 1);
    const askChat = async (instance: BenchInstance, question: string): Promise<number> => {
      const res = await instance.asTenant("POST", "/v1/chat", { question });
      checkChat(instance.variant, res);
      // The fake keeps every request body; nothing reads them here.
      fake.requests.length = 0;
      fake.charges.length = 0;
      return res.ms;
    };
    const settleAll = async () => {
      for (const v of variants) await byVariant[v].settle();
    };
    const results: EndpointResult[] = [];
    const runWrites: Partial<Record<Variant, RunWriteTiming>> = {};
    results.push(
      await measure(
        "chat",
        variants,
        options,
        (v, round) => askChat(byVariant[v], chatQuestions[round]!),
        settleAll,
        () => variants.forEach((v) => byVariant[v].runWrites?.reset()),
      ),
    );
    await settleAll();
    for (const v of variants) {
      const timer = byVariant[v].runWrites;
      if (timer) runWrites[v] = timer.summary();
    }
    if (options.search) {
      const searchQueries = questions("search", total, options.seed + 2);
      results.push(
        await measure(
          "search",
          variants,
          options,
          async (v, round) => {
            const res = await byVariant[v].asTenant("POST", "/v1/search", { query: searchQueries[round]!, k: 8 });
            if (res.status !== 200) throw new Error(`${v}: search answered ${res.status} ${JSON.stringify(res.body)}`);
            return res.ms;
          },
          settleAll,
        ),
      );
    }

    const requestsPerVariant = total * (options.search ? 2 : 1);
    const written = {} as ObsReport["written"];
    for (const v of variants) {
      const log = await byVariant[v].logVolume();
      written[v] = { chatRuns: await byVariant[v].storedChatRuns(), logLines: log.lines, logBytes: log.bytes };
    }
    checkWritten(variants, written, total, requestsPerVariant);

    progress("probe: timing the logging work of one request outside HTTP");
    const logLines = await timeAccessLogLines(logDir, options.quick ? 2000 : 20_000);

    printReport({
      startedAt,
      options,
      variants,
      backendLabel,
      machine: `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "unknown CPU"}), Node ${process.version}`,
      load: { start: loadAtStart, end: loadavg()[0]! },
      modelLoadMs,
      results,
      written,
      requestsPerVariant,
      runWrites,
      logLines,
      wallMs: since(started),
    });
  } finally {
    for (const instance of Object.values(instances)) await instance.close().catch(() => undefined);
    await client.close();
    await llm?.close();
    await model.close();
    await rm(logDir, { recursive: true, force: true });
  }
}

/** Warm-up rounds, then the measured ones; before each request every instance is idle (`settle`, not timed). */
async function measure(
  endpoint: "chat" | "search",
  variants: readonly Variant[],
  options: ObsOptions,
  send: (variant: Variant, round: number) => Promise<number>,
  settle: () => Promise<void>,
  afterWarmup: () => void = () => undefined,
): Promise<EndpointResult> {
  progress(`${endpoint}: ${options.warmup} warm-up rounds, then ${options.requests} measured (${variants.join(", ")} taking turns)`);
  const settled = async (v: Variant, round: number) => {
    await settle();
    return send(v, round);
  };
  if (options.warmup > 0) await roundRobin(variants, options.warmup, options.seed, settled);
  await settle();
  afterWarmup();
  const samples = await roundRobin(variants, options.requests, options.seed + 10, (v, round) => settled(v, options.warmup + round));
  const comparisons: Partial<Record<Variant, Comparison>> = {};
  for (const v of variants) if (v !== "off") comparisons[v] = compare(samples[v], samples.off, options.seed + 20);
  return { endpoint, comparisons };
}

function questions(label: string, count: number, seed: number): string[] {
  const stream = new QuestionStream(label, seed);
  return Array.from({ length: count }, () => stream.next());
}

/** A chat that did not do the full work (refused, cached, or answered without the LLM) would measure something else. */
function checkChat(variant: Variant, res: HttpResult): void {
  const body = res.body as Partial<ChatBody>;
  if (res.status !== 200) throw new Error(`${variant}: chat answered ${res.status} ${JSON.stringify(res.body)}`);
  if (body.cached !== false) throw new Error(`${variant}: a chat was answered from the cache`);
  if (body.mode !== "llm" || !(body.usage?.total_tokens && body.usage.total_tokens > 0)) {
    throw new Error(`${variant}: a chat was answered without an LLM call (no passages?): ${JSON.stringify(res.body)}`);
  }
}

function checkWritten(variants: readonly Variant[], written: ObsReport["written"], chats: number, requests: number): void {
  const problems: string[] = [];
  for (const v of variants) {
    const w = written[v];
    const { runs: records, logging: logs } = VARIANTS[v];
    if (records && w.chatRuns < chats) problems.push(`${v} stored ${w.chatRuns} chat runs for ${chats} chats`);
    if (!records && w.chatRuns !== 0) problems.push(`${v} stored ${w.chatRuns} chat runs with recording off`);
    if (logs && w.logLines < requests) problems.push(`${v} wrote ${w.logLines} log lines for ${requests} requests`);
    if (!logs && w.logLines !== 0) problems.push(`${v} wrote ${w.logLines} log lines while silent`);
  }
  if (problems.length > 0) throw new Error(`the bench did not measure what it claims: ${problems.join("; ")}`);
}

runBenchmark("bench:observability", main);
