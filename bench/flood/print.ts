import type { QueueDiscipline } from "../../src/flow/fair-queue.js";
import type { PlanJson } from "../../test/support/api-types.js";
import { formatNumber, ms, printTable, type Cell } from "../report.js";
import { CEILING_CONNECTIONS } from "./ceiling.js";
import {
  aggressorShare,
  failedPerSecond,
  failuresPerSecond,
  GOALS,
  isRefusal,
  okPerSecond,
  p99Ratio,
  refusalsPerSecond,
  verdict,
  victimErrors,
} from "./figures.js";
import type { GeneratorResult } from "./generator-protocol.js";
import type { FloodOptions } from "./options.js";
import { BUILD_NAME, BUILDS, type BuildShapeResult } from "./phases.js";
import type { BackendReport, FloodReport } from "./report-types.js";
import { AGGRESSOR_KEYS, connectionsOf, SHAPES, type Shape } from "./shapes.js";
import { VICTIM_OPS, type VictimResult } from "./victim.js";

const out = (line = "") => process.stdout.write(`${line}\n`);

export function printHeader(options: FloodOptions, machine: string, startedAt: Date): void {
  const o = options;
  out(`Flood benchmark (issue #16): a victim's latency under five floods, FIFO baseline vs Fence${o.quick ? " (quick run: a smoke test, not a measurement)" : ""}`);
  out(`Started ${startedAt.toISOString()}; ${machine}; seed ${o.seed}.`);
  out(
    `Processes: each Fence build (buildFence, default local embedding model) serves in a child process of its own; the aggressor's ` +
      `load generator is another (undici, one keep-alive connection per closed loop); the victim's client and the fake LLM run in the orchestrator.`,
  );
  out(
    `Victim: one tenant on the seeded 'pro' plan with ${o.victimSeedDocs} small documents, open loop: ${formatNumber(o.victimSearchesPerSecond)} searches/s, ` +
      `${formatNumber(o.victimChatsPerSecond)} chats/s and one small synchronous upload (~200 words, POST /v1/documents) every ${formatNumber(o.victimUploadEverySeconds)} s; ` +
      `latency from when a request was due to its whole answer; any non-2xx is an error.`,
  );
  out(
    `Aggressor: a fresh tenant per phase (purged after it, so per-minute windows start empty and no leftover work runs on), ` +
      `${AGGRESSOR_KEYS} keys, closed loop. Phases of ${formatNumber(o.seconds)} s: victim alone, aggressor alone (its 2xx/s = the capacity), both; ` +
      `the aggressor starts ${formatNumber(o.warmupSeconds)} s before its window. The two builds take turns phase by phase.`,
  );
  const llm = o.shapes.some((id) => SHAPES[id].llm);
  out(
    llm
      ? `Chats: both builds have the fake OpenAI-compatible LLM (${o.llmDelayMs} ms per completion, LLM_MAX_CONCURRENCY=${o.llmConcurrency}) for shape (e), ` +
          `where the victim's and the aggressor's chats go through it; the other shapes turn it off for their tenants (the chat.llm flag), so their chats are extractive.`
      : "Chats: no LLM configured (shape (e) is not in this run), so every chat is answered extractively.",
  );
}

export function printBackend(b: BackendReport, options: FloodOptions): void {
  out();
  out(`######## ${b.backend === "pglite" ? "PGlite" : "Postgres"}: ${b.label} ########`);
  out(`Plans (seeded, unchanged): ${b.plans.map(describePlan).join("; ")}.`);
  const ceiling = okPerSecond(b.ceiling);
  out(
    `Ceiling: a bare Hono route (GET / → "ok", its own process) answered ${formatNumber(Math.round(ceiling))} requests/s to the same load generator ` +
      `with ${CEILING_CONNECTIONS} connections (generator ${pct(b.ceiling.clientBusy)} busy` +
      `${b.ceiling.clientBusy >= 0.9 ? ": the generator's own limit, the route alone could answer more" : ""}).`,
  );
  for (const s of b.shapes) printShape(SHAPES[s.shape], s.builds, ceiling, options);
}

function printShape(shape: Shape, builds: Record<QueueDiscipline, BuildShapeResult>, ceiling: number, options: FloodOptions): void {
  const streams = shape.streams.map((s) => `${s.connections} ${s.op}`).join(" + ");
  const victimRow = (d: QueueDiscipline): Cell[] => {
    const r = builds[d];
    const cells: Cell[] = [BUILD_NAME[d]];
    for (const op of VICTIM_OPS) {
      const alone = r.victimAlone.ops[op].latency;
      const flood = r.flood.victim.ops[op].latency;
      cells.push(`${ms(alone.p50)} → ${ms(flood.p50)}`, `${ms(alone.p99)} → ${ms(flood.p99)} (${times(p99Ratio(r, op))})`);
    }
    const n = (v: VictimResult) => VICTIM_OPS.reduce((s, op) => s + v.ops[op].sent, 0);
    cells.push(`${ms(r.victimAlone.all.p99)} → ${ms(r.flood.victim.all.p99)} (${times(p99Ratio(r, "all"))})`);
    cells.push(`${n(r.victimAlone)} / ${n(r.flood.victim)}`, victimErrors(r).reduce((s, e) => s + e.n, 0));
    return cells;
  };
  printTable(
    `Shape (${shape.id}) ${shape.title}: aggressor on '${shape.plan}', ${connectionsOf(shape)} connections (${streams}) — victim latency, ms, alone → under the flood`,
    ["build", "search p50", "search p99 (ratio)", "chat p50", "chat p99 (ratio)", "upload p50", "upload p99 (ratio)", "all p99 (ratio)", "requests", "errors"],
    BUILDS.map(victimRow),
    options.quick ? ["quick run: a handful of samples per operation, so a p99 is close to the slowest one."] : [],
  );

  const aggressorRow = (d: QueueDiscipline): Cell[] => {
    const r = builds[d];
    return [
      BUILD_NAME[d],
      perOp(r.aggressorAlone),
      perOp(r.flood.aggressor),
      shape.id === "a" ? "(refused)" : pct(aggressorShare(r)),
      formatNumber(Math.round(refusalsPerSecond(r.aggressorAlone))),
      formatNumber(Math.round(refusalsPerSecond(r.flood.aggressor))),
      reasons(r.flood.aggressor),
      formatNumber(failuresPerSecond(r.flood.aggressor)),
      `${pct(r.aggressorAlone.clientBusy)} / ${pct(r.flood.aggressor.clientBusy)}`,
    ];
  };
  printTable(
    `Shape (${shape.id}) aggressor, per second`,
    ["build", "2xx/s alone", "2xx/s flood", "share", "refused/s alone", "refused/s flood", "refusals by reason (flood)", "failed/s", "generator busy"],
    BUILDS.map(aggressorRow),
    [
      "share: 2xx/s under the flood ÷ 2xx/s alone, the capacity the victim leaves it.",
      "failed/s: non-2xx answers that are not a limit's refusal (5xx other than 503, network errors).",
      ...(shape.id === "a" ? [`refusals/s beside the ceiling: a bare Hono route answers ${formatNumber(Math.round(ceiling))}/s here.`] : []),
      ...(shape.streams.some((s) => s.op === "queued-upload") ? ["queued-upload 2xx: 202 Accepted (a job queued), not a document stored."] : []),
    ],
  );
  for (const d of BUILDS) {
    const errors = victimErrors(builds[d]);
    if (errors.length === 0) continue;
    out(`  !!! VICTIM ERRORS (${BUILD_NAME[d]}): ${errors.map((e) => `${e.n}× ${e.op} ${e.key} (${e.phase})`).join(", ")}`);
  }
}

export function printGoals(report: FloodReport): void {
  const rows: Cell[][] = [];
  let fenceMet = 0;
  let fenceTotal = 0;
  for (const b of report.backends) {
    for (const s of b.shapes) {
      for (const d of BUILDS) {
        const v = verdict(s.builds[d], s.shape === "a");
        if (d === "fair") {
          fenceTotal++;
          if (v.met) fenceMet++;
        }
        const ceiling = okPerSecond(b.ceiling);
        rows.push([
          b.backend,
          `(${s.shape})`,
          BUILD_NAME[d],
          ...VICTIM_OPS.map((op) => `${times(v.ratios[op].ratio)} ${mark(v.ratios[op].met)}`),
          v.victimErrors === 0 ? "0" : `${v.victimErrors} NOT met`,
          v.share ? `${pct(v.share.share)} ${mark(v.share.met)}` : "—",
          v.refusals ? `${formatNumber(Math.round(v.refusals.perSecond))} ${mark(v.refusals.met)} (ceiling ${formatNumber(Math.round(ceiling))})` : "—",
          v.met ? "met" : "NOT met",
        ]);
      }
    }
  }
  printTable(
    `Goals (issue #16): victim p99 ≤ ${GOALS.victimP99Ratio}× alone for search, chat and upload, with no victim error; aggressor ≥ ${pct(GOALS.aggressorShare)} ` +
      `of its capacity; ≥ ${formatNumber(GOALS.refusalsPerSecond)} refusals/s`,
    ["backend", "shape", "build", "search p99", "chat p99", "upload p99", "victim errors", "aggressor share", "refusals/s", "all"],
    rows,
    ["The bench reports; it does not fail on a missed goal."],
  );
  out();
  out(`Fence meets every goal in ${fenceMet} of ${fenceTotal} backend × shape combinations.`);
  out(
    `Load average (1 min) at start ${report.load.start.toFixed(2)}, at end ${report.load.end.toFixed(2)}; total wall time ${(report.wallMs / 1000).toFixed(0)} s.`,
  );
}

function describePlan(p: PlanJson): string {
  const n = (v: number | null) => (v === null ? "unlimited" : formatNumber(v));
  return `${p.name}: ${n(p.requests_per_minute)} req/min, ${n(p.max_concurrency)} in flight, weight ${p.scheduling_weight}, ${n(p.tokens_per_day)} tokens/day`;
}

/** "120" or, with several operations, "120 (chat 80, upload 40)". */
function perOp(r: GeneratorResult): string {
  const ops = Object.keys(r.byOp) as (keyof GeneratorResult["byOp"])[];
  const totalOk = formatNumber(okPerSecond(r));
  return ops.length < 2 ? totalOk : `${totalOk} (${ops.map((op) => `${op} ${formatNumber(okPerSecond(r, op))}`).join(", ")})`;
}

function reasons(r: GeneratorResult): string {
  const refusals = Object.entries(failedPerSecond(r)).filter(([key]) => isRefusal(key));
  return refusals.length ? refusals.map(([key, n]) => `${key} ${formatNumber(n >= 10 ? Math.round(n) : n)}`).join(", ") : "none";
}

function pct(value: number): string {
  return Number.isFinite(value) ? `${Math.round(value * 100)}%` : "n/a";
}

function times(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : "n/a";
}

function mark(met: boolean): string {
  return met ? "met" : "NOT met";
}
