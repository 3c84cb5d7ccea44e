import { formatNumber, ms, printTable, type Cell } from "../report.js";
import { VARIANTS, type RunWriteTiming, type Variant } from "./instance.js";
import type { ObsOptions } from "./options.js";
import type { Comparison } from "./paired.js";
import type { LogLineTiming } from "./probes.js";

/** The goal: logging + run records add at most this much to a chat's p50. */
export const GOAL_ADDED_P50_MS = 1;

export interface EndpointResult {
  endpoint: "chat" | "search";
  /** Each variant against OFF (OFF against itself is its own row's baseline). */
  comparisons: Partial<Record<Variant, Comparison>>;
}

export interface ObsReport {
  startedAt: Date;
  options: ObsOptions;
  variants: readonly Variant[];
  backendLabel: string;
  machine: string;
  load: { start: number; end: number };
  modelLoadMs: number;
  results: EndpointResult[];
  /** What each instance wrote during the run: chat run records stored, log lines and bytes. */
  written: Record<Variant, { chatRuns: number; logLines: number; logBytes: number }>;
  requestsPerVariant: number;
  /** Run-record writes timed during the measured chats, per instance that records runs. */
  runWrites: Partial<Record<Variant, RunWriteTiming>>;
  logLines: LogLineTiming;
  wallMs: number;
}

const out = (line = "") => process.stdout.write(`${line}\n`);

export function printReport(r: ObsReport): void {
  const o = r.options;
  out(`Observability overhead: logging + run records per request, ON vs OFF side by side${o.quick ? " (quick run)" : ""}`);
  out(`Started ${r.startedAt.toISOString()}; ${r.backendLabel}; ${r.machine}; seed ${o.seed}.`);
  out(
    `Load average (1 min) at start ${r.load.start.toFixed(2)}, at end ${r.load.end.toFixed(2)} ` +
      `(this bench keeps about 2 threads busy: Fence's — with its database if PGlite — the client's and the model's take turns; more means other processes competed).`,
  );
  out(
    `${r.variants.length} Fence instances in this process (buildFence, served on loopback), each with its own database, ` +
      `sharing one local embedding model (USE lite, 1 thread, loaded in ${(r.modelLoadMs / 1000).toFixed(1)} s) and one fake ` +
      `OpenAI-compatible LLM on loopback with no delay (Fence's real openai client on the path).`,
  );
  for (const v of r.variants) out(`  ${VARIANTS[v].label.padEnd(30)} ${describeVariant(v)}`);
  out(
    `Each instance's tenant (a plan with no limits) has ${o.docs} help articles (~6 chunks each) uploaded synchronously. ` +
      `Requests go one at a time over HTTP from a client on its own thread, the instances taking turns request by request ` +
      `(seeded random order within a round), each sent to an idle server; ` +
      `every question is distinct, so neither the query-embedding cache nor the answer cache answers. ` +
      `${o.warmup} warm-up + ${o.requests} measured requests per instance and endpoint. Times are client-side, in ms.`,
  );

  for (const result of r.results) {
    const off = Object.values(result.comparisons)[0]!.baseline;
    const rows: Cell[][] = [[VARIANTS.off.label, ms(off.p50), ms(off.p95), ms(off.mean), "", "", ""]];
    for (const v of r.variants) {
      const c = result.comparisons[v];
      if (!c) continue;
      rows.push([
        VARIANTS[v].label,
        ms(c.variant.p50),
        ms(c.variant.p95),
        ms(c.variant.mean),
        signed(c.addedP50),
        `${signed((c.addedP50 / c.baseline.p50) * 100, 1)} %`,
        `${signed(c.pairedMedian)} [${signed(c.pairedCi[0])}, ${signed(c.pairedCi[1])}]`,
      ]);
    }
    printTable(
      `POST /v1/${result.endpoint}: ${result.endpoint === "chat" ? "grounded answer (query embedding, hybrid search, LLM call)" : "hybrid search (no run record is written for a search)"}`,
      ["instance", "p50", "p95", "mean", "added p50", "added p50 %", "paired median diff [95% CI]"],
      rows,
      [
        "added p50 = p50(instance) − p50(OFF). paired median diff = median over rounds of (instance_i − OFF_i), with a 95 % bootstrap interval.",
      ],
    );
    const on = result.comparisons.on!;
    if (result.endpoint === "chat") {
      const awaited = awaitedWork(r);
      const verdict = chatVerdict(on, awaited);
      out(
        `Verdict (goal: ≤ ${GOAL_ADDED_P50_MS} ms p50 added per chat): ${verdict.word} — ON adds ${signed(on.addedP50)} ms ` +
          `(${signed((on.addedP50 / on.baseline.p50) * 100, 1)} %) to the chat p50; the paired median is ${signed(on.pairedMedian)} ms, ` +
          `95 % CI ${signed(on.pairedCi[0])} to ${signed(on.pairedCi[1])}. ${verdict.why}`,
      );
      out(
        `On every chat's response path ON adds the logging work, ${ms(awaited)} ms (timed below); the run-record write, ` +
          `${ms(r.runWrites.on!.save.p50)} ms p50, happens after the response and is not on it.`,
      );
    } else {
      out(
        `Search: ON adds ${signed(on.addedP50)} ms to the p50 (paired median ${signed(on.pairedMedian)} ms, 95 % CI ` +
          `${signed(on.pairedCi[0])} to ${signed(on.pairedCi[1])}): the access-log line alone.`,
      );
    }
  }

  const l = r.logLines;
  const writeRows = r.variants.flatMap((v): Cell[][] => {
    const w = r.runWrites[v];
    if (!w) return [];
    return [
      [`run record, ${VARIANTS[v].label}: RunRecords.save (mask + store), after the response`, ms(w.save.p50), ms(w.save.p95), ms(w.save.mean), w.save.n],
      ["  of which RunStore.insert (withTenant transaction + INSERT)", ms(w.insert.p50), ms(w.insert.p95), ms(w.insert.mean), w.insert.n],
    ];
  });
  printTable(
    "Where the time goes (run writes timed during the measured chats; logging timed alone afterwards)",
    ["what", "p50", "p95", "mean", "n"],
    [
      ...writeRows,
      ["logging: 2 child loggers + access line at info, to a file (µs → ms)", ms(l.info.p50 / 1000), ms(l.info.p95 / 1000), ms(l.info.mean / 1000), l.info.n],
      ["  the same on a silent logger (paid by OFF too)", ms(l.silent.p50 / 1000), ms(l.silent.p95 / 1000), ms(l.silent.mean / 1000), l.silent.n],
    ],
  );
  const rows = r.variants.map((v): Cell[] => {
    const x = r.written[v];
    return [
      VARIANTS[v].label,
      x.chatRuns,
      x.logLines,
      formatNumber(x.logLines / r.requestsPerVariant),
      x.logLines ? formatNumber(x.logBytes / x.logLines) : "",
    ];
  });
  printTable("What each instance wrote (sanity check: ON really logs and records, OFF does not)", ["instance", "chat runs stored", "log lines", "lines / request", "bytes / line"], rows, [
    `${r.requestsPerVariant} requests per instance (warm-up included; set-up requests not counted, their log lines are).`,
  ]);
  out("");
  out(`Wall time ${(r.wallMs / 1000).toFixed(1)} s.`);
}

function describeVariant(v: Variant): string {
  const { logging, runs } = VARIANTS[v];
  return `${logging ? "createLogger('info', pino.destination(<temp file>))" : "createLogger('silent')"}, recordRuns: ${runs}`;
}

/** Per chat, the extra work ON's response waits for (p50): the logging work beyond a silent logger's (the run write comes after). */
function awaitedWork(r: ObsReport): number {
  return (r.logLines.info.p50 - r.logLines.silent.p50) / 1000;
}

/**
 * Met or not by the paired difference's 95 % interval when it settles the question; when the
 * interval straddles the goal (noise larger than the goal), by the work ON is known to wait for:
 * that is a lower bound on what it adds, so above the goal it means not met; below, inconclusive.
 */
function chatVerdict(on: Comparison, awaited: number): { word: string; why: string } {
  const [lo, hi] = on.pairedCi;
  if (lo > GOAL_ADDED_P50_MS) return { word: "NOT MET", why: "The whole interval is above the goal." };
  if (hi <= GOAL_ADDED_P50_MS) return { word: "MET", why: "The whole interval is within the goal." };
  const noise = "The interval straddles the goal: at this sample size the machine's noise is larger than the goal";
  if (awaited > GOAL_ADDED_P50_MS) {
    return { word: "NOT MET", why: `${noise}, but the work ON waits for on every chat is ${ms(awaited)} ms by itself (below), above the goal.` };
  }
  return { word: "INCONCLUSIVE", why: `${noise}, and the work ON waits for (${ms(awaited)} ms, below) is within it: run more requests.` };
}

function signed(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return "n/a";
  return `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(digits)}`;
}
