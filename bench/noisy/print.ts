import { formatNumber, ms, printTable, type Cell } from "../report.js";
import type { LatencySummary } from "../stats.js";
import type { ManyTenantsResult } from "./many-tenants.js";
import type { NoisyOptions } from "./options.js";
import type { PhaseResult } from "./phases.js";

/** The issue's goal: the victim's p99 under flood at most this many times its solo p99. */
export const GOAL_RATIO = 1.5;

export interface NoisyReport {
  startedAt: Date;
  options: NoisyOptions;
  backendLabel: string;
  machine: string;
  plan: { name: string; weight: number; maxRunningJobs: number };
  modelLoadMs: number;
  /** Per discipline: solo then flood. */
  phases: { fifo: [PhaseResult, PhaseResult]; fair: [PhaseResult, PhaseResult] };
  manyTenants: ManyTenantsResult[];
  /** One-minute load average when the run started and ended: other processes on the machine slow every number. */
  load: { start: number; end: number };
  wallMs: number;
}

const SCHEDULER = { fifo: "FIFO baseline", fair: "Fence" } as const;

export function printReport(report: NoisyReport): void {
  const o = report.options;
  const laneCapacity = (o.llmConcurrency * 1000) / o.llmDelayMs;
  const out = (line = "") => process.stdout.write(`${line}\n`);
  out(`Noisy-neighbour benchmark: Fence's fair scheduling vs a plain global FIFO${o.quick ? " (quick run)" : ""}`);
  out(`Started ${report.startedAt.toISOString()}; ${report.backendLabel}; ${report.machine}; seed ${o.seed}.`);
  out(
    `Load average (1 min) at start ${report.load.start.toFixed(2)}, at end ${report.load.end.toFixed(2)}: ` +
      `this process alone keeps about ${o.embeddingThreads + 1} threads busy; more means other processes were competing for the cores.`,
  );
  out(
    `LLM: the fake OpenAI-compatible server on loopback, ${o.llmDelayMs} ms per completion` +
      `${o.llmJitter > 0 ? ` (± ${Math.round(o.llmJitter * 100)}%, evenly spread)` : " (fixed)"}, ` +
      `LLM_MAX_CONCURRENCY=${o.llmConcurrency} (provider lane capacity ≈ ${formatNumber(laneCapacity)} calls/s).`,
  );
  const victimSlots = (o.victimChatsPerSecond * o.llmDelayMs) / 1000;
  out(
    `The victim's chats keep ≈ ${formatNumber(victimSlots)} of the lane's ${o.llmConcurrency} slots busy on average: ` +
      `${pct(victimSlots, o.llmConcurrency)} of the lane, ${pct(victimSlots, o.llmConcurrency / 2)} of its fair half under the flood ` +
      `(near 100 %, its own calls would queue behind each other under any fair scheduler).`,
  );
  out(
    `Embeddings: the local model (USE lite), ${o.embeddingThreads} worker threads, loaded once per scheduler ` +
      `(FIFO queue for the baseline; fair queue for Fence, plus ${o.embeddingReservedThreads} thread(s) reserved for tenants ` +
      `without a backlog, with the shared threads at lowered OS priority) in ${(report.modelLoadMs / 1000).toFixed(1)} s. Job workers: ${o.jobWorkers}.`,
  );
  out(
    `Every tenant is on one plan, '${report.plan.name}', made for the bench through the admin API: no admission limit and ` +
      `no budget (requests/min, tokens/min, in flight, tokens, spend: unlimited), so nothing is refused and the scheduler ` +
      `is what is measured; scheduling weight ${report.plan.weight} for all (fairness, not priority); max_running_jobs ${report.plan.maxRunningJobs}.`,
  );
  out(
    `Victim: ${formatNumber(o.victimChatsPerSecond)} chats/s and one small upload (2 chunks, Prefer: respond-async) every ` +
      `${formatNumber(o.victimUploadEverySeconds)} s, open loop, for ${formatNumber(o.seconds)} s per phase.`,
  );
  out(
    `Aggressor (flood phases): ${formatNumber(o.victimChatsPerSecond * o.floodFactor)} chats/s offered ` +
      `(${formatNumber(o.floodFactor)}× the victim), at most ${o.aggressorInFlight} in flight, plus ${o.aggressorBatchDocs} help ` +
      `articles (~6 chunks each) queued up front as batches of 100; it starts ${formatNumber(o.warmupSeconds)} s before the victim's window.`,
  );
  out("Every question is distinct, so neither the query-embedding cache nor the answer cache absorbs any load.");
  out("All traffic is real HTTP on 127.0.0.1; latencies are end to end as the client saw them.");

  const { fifo, fair } = report.phases;
  const victimRow = (label: string, p: PhaseResult): Cell[] => {
    const v = p.victim;
    return [
      label,
      v.chats,
      ms(v.chat.p50),
      `${v.chatsUnfinished > 0 ? "≥ " : ""}${ms(v.chat.p99)}`,
      `${Math.round(v.chatLlmShare * 100)}%`,
      v.uploads,
      ms(v.upload.p50),
      uploadP99(v.upload, v.uploadsUnfinished),
      ms(v.uploadWait.p99),
      v.uploadsUnfinished + v.chatsUnfinished,
      ms(v.queryEmbed.p50),
      ms(v.queryEmbed.p99),
      ms(v.chatRest.p50),
      ms(v.chatRest.p99),
      `${Math.round(v.mainThreadBusy * 100)}%`,
      v.chatErrors + v.uploadErrors,
    ];
  };
  printTable(
    "Victim latency (ms)",
    ["phase", "chats", "chat p50", "chat p99", "via LLM", "uploads", "upload p50", "upload p99", "job wait p99", "unfinished", "q-embed p50", "q-embed p99", "rest p50", "rest p99", "main busy", "errors"],
    [
      victimRow("solo (baseline build)", fifo[0]),
      victimRow("flood, FIFO baseline", fifo[1]),
      victimRow("solo (Fence build)", fair[0]),
      victimRow("flood, Fence", fair[1]),
    ],
    [
      "chat: from when the chat was due to the whole answer; upload: from when it was due to the end of its job.",
      `unfinished: uploads whose job was still waiting ${formatNumber(o.drainSeconds)} s after the window (and chats unanswered after ` +
        `${formatNumber(o.seconds + o.drainSeconds)} s); counted at the time waited, so their p99 is a lower bound (≥).`,
      "job wait: of a finished upload's latency, the time before a worker picked its job up.",
      "q-embed: the victim's query embeddings inside the window, queue wait + forward pass on the shared model.",
      `rest: a chat's latency minus its query embedding and the LLM's ${o.llmDelayMs} ms${o.llmJitter > 0 ? " (on average)" : ""}: waiting for the LLM lane, database work and its queue, HTTP.`,
      "main busy: event-loop utilisation of the main thread in the window (HTTP server, job runner, PGlite, the clients, the fake LLM).",
    ],
  );

  const stepsRow = (label: string, p: PhaseResult): Cell[] => {
    const s = p.victim.steps;
    const pair = (summary: LatencySummary) => `${ms(summary.p50)} / ${ms(summary.p99)}`;
    return [label, s.runs, pair(s.queryEmbedding), pair(s.search), pair(s.budgetReservation), pair(s.laneWait), pair(s.betweenSteps), pair(s.outsideRun)];
  };
  printTable(
    "Victim chats by step (ms, p50 / p99, from their run records)",
    ["phase", "runs", "query embedding", "search", "budget", "LLM lane wait", "between steps", "outside the run"],
    [
      stepsRow("solo (baseline build)", fifo[0]),
      stepsRow("flood, FIFO baseline", fifo[1]),
      stepsRow("solo (Fence build)", fair[0]),
      stepsRow("flood, Fence", fair[1]),
    ],
    [
      `LLM lane wait: the model_call step minus the provider's ${o.llmDelayMs} ms${o.llmJitter > 0 ? " (on average)" : ""}.`,
      "between steps: the run's latency minus its steps (settings read, answer cache, ledger settlement); " +
        "outside the run: the client's latency minus the run's (HTTP, key check, admission, response).",
    ],
  );

  const uploadPhases: [string, PhaseResult][] = [
    ["solo (Fence build)", fair[0]],
    ["flood, Fence", fair[1]],
  ];
  const stepNames = [...new Set(uploadPhases.flatMap(([, p]) => p.victim.uploadSteps.steps.map((s) => s.name)))];
  printTable(
    "Victim uploads by step with Fence (ms, p50 / p99, from their jobs' steps)",
    ["phase", "jobs", "waiting for a worker", ...stepNames],
    uploadPhases.map(([label, p]) => {
      const u = p.victim.uploadSteps;
      const pair = (summary: LatencySummary | undefined) => (summary ? `${ms(summary.p50)} / ${ms(summary.p99)}` : "n/a");
      return [label, u.jobs, pair(p.victim.uploadWait), ...stepNames.map((name) => pair(u.steps.find((s) => s.name === name)?.ms))];
    }),
  );

  const aggressorRow = (p: PhaseResult): Cell[] => {
    const a = p.aggressor!;
    return [
      SCHEDULER[p.discipline],
      formatNumber(a.offeredPerSecond),
      formatNumber(a.sentPerSecond),
      formatNumber(a.chatsPerSecond),
      `${formatNumber(a.chatsPerSecond / o.victimChatsPerSecond)}×`,
      ms(a.chat.p50),
      formatNumber(a.docsPerSecond),
      formatNumber(a.chunksPerSecond),
      `${a.docsLeftQueued} of ${a.docsQueued}`,
      a.chatErrors,
      formatNumber(p.llmCallsPerSecond),
    ];
  };
  printTable(
    "Aggressor during the victim's window",
    ["scheduler", "offered chats/s", "sent/s", "answered/s", "vs victim", "chat p50 ms", "docs/s", "chunks/s", "docs still queued", "refused", "LLM calls/s (all)"],
    [aggressorRow(fifo[1]), aggressorRow(fair[1])],
    [
      `LLM calls/s (all): victim and aggressor answers through the LLM that arrived inside the window; the lane can do ≈ ${formatNumber(laneCapacity)}.`,
      ...[fifo[1], fair[1]].map((p) => {
        const left = laneCapacity - p.victimLlmPerSecond;
        return (
          `${SCHEDULER[p.discipline]}: the victim's answers took ${formatNumber(p.victimLlmPerSecond)} calls/s of the lane; the aggressor got ` +
          `${formatNumber(p.aggressor!.chatsPerSecond)} of the ≈ ${formatNumber(left)} left (${pct(p.aggressor!.chatsPerSecond, left)}).`
        );
      }),
    ],
  );

  const goalRow = (what: "chat" | "upload", p: [PhaseResult, PhaseResult]): Cell[] => {
    const solo = p[0].victim[what].p99;
    const flood = p[1].victim[what].p99;
    const censored = (what === "upload" ? p[1].victim.uploadsUnfinished : p[1].victim.chatsUnfinished) > 0;
    const ratio = flood / solo;
    const met = ratio <= GOAL_RATIO && !censored;
    return [
      what,
      SCHEDULER[p[0].discipline],
      ms(solo),
      `${censored ? "≥ " : ""}${ms(flood)}`,
      `${censored ? "≥ " : ""}${Number.isFinite(ratio) ? ratio.toFixed(2) : "n/a"}×`,
      met ? "met" : "NOT met",
    ];
  };
  printTable(
    `Goal: victim p99 under flood ≤ ${GOAL_RATIO}× its solo p99 (same build)`,
    ["victim", "scheduler", "solo p99", "flood p99", "ratio", "goal"],
    [goalRow("chat", fifo), goalRow("chat", fair), goalRow("upload", fifo), goalRow("upload", fair)],
  );

  printTable(
    "Ingestion with many tenants at once (each queues one batch at the same moment)",
    ["scheduler", "tenants", "docs", "chunks", "wall s", "docs/s", "chunks/s", "done/tenant at half", "Jain at half", "all started s", "tenant done s (first/median/last)", "failed+unfinished"],
    report.manyTenants.map((m) => [
      SCHEDULER[m.discipline],
      m.tenants,
      m.docs,
      m.chunks,
      (m.wallMs / 1000).toFixed(1),
      formatNumber(m.docsPerSecond),
      formatNumber(m.chunksPerSecond),
      `${m.halfwayMin}–${m.halfwayMax} of ${m.docs / m.tenants}`,
      m.halfwayJain.toFixed(2),
      seconds(m.allStartedSec),
      `${seconds(m.firstTenantDoneSec)} / ${seconds(m.medianTenantDoneSec)} / ${seconds(m.lastTenantDoneSec)}`,
      m.failed + m.unfinished,
    ]),
    [
      "done/tenant at half: when half of all documents were done, the fewest and most any one tenant had done (fair: about half each); Jain's index of those counts (1 = all equal).",
      "all started: seconds until every tenant had its first document done.",
    ],
  );

  const chatMet = fair[1].victim.chatsUnfinished === 0 && fair[1].victim.chat.p99 / fair[0].victim.chat.p99 <= GOAL_RATIO;
  const uploadMet = fair[1].victim.uploadsUnfinished === 0 && fair[1].victim.upload.p99 / fair[0].victim.upload.p99 <= GOAL_RATIO;
  out();
  const f = fair[1].victim;
  out(
    `Result: with Fence the goal is ${chatMet && uploadMet ? "MET" : "NOT MET"} ` +
      `(chats ${chatMet ? "met" : "not met"}, uploads ${uploadMet ? "met" : "not met"}).`,
  );
  out(
    `  Victim under flood with Fence, at p99: chat ${ms(f.chat.p99)} ms (query embedding ${ms(f.queryEmbed.p99)}, LLM ${o.llmDelayMs}, ` +
      `rest ${ms(f.chatRest.p99)}: lane wait, database, HTTP); upload ${ms(f.upload.p99)} ms (of which waiting for a worker ` +
      `${ms(f.uploadWait.p99)}); main thread ${Math.round(f.mainThreadBusy * 100)}% busy.`,
  );
  out(`Total wall time: ${(report.wallMs / 1000).toFixed(1)} s`);
}

function uploadP99(summary: LatencySummary, unfinished: number): string {
  return `${unfinished > 0 ? "≥ " : ""}${ms(summary.p99)}`;
}

function pct(value: number, base: number): string {
  return base > 0 ? `${Math.round((value / base) * 100)}%` : "n/a";
}

function seconds(value: number): string {
  return Number.isFinite(value) ? value.toFixed(1) : "never";
}
