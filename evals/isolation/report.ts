import { availabilitySummaryLine } from "./availability/report.js";
import type { AvailabilityRun } from "./availability/section.js";
import { describeFinding } from "./leak-detector.js";
import type { Mode } from "./modes.js";
import type { AttackResult, SuiteRun, Verdict } from "./suite.js";

/**
 * The printed report: one line per attack, per mode and chat variant, then a summary per mode.
 * Verdicts that fail a mode with locks on: leak, violation (wrong status or A's data changed),
 * error, control failed, and "blocked (assertion)" — the assertion is the last line of defence,
 * so if it had to fire, a lock in front of it did not hold. With the locks off the rule inverts:
 * the mode passes only if leaks were seen.
 */
const FAILS_WITH_LOCKS_ON: ReadonlySet<Verdict> = new Set(["leak", "violation", "error", "control failed", "blocked (assertion)"]);

export interface ModeSummary {
  backend: string;
  mode: Mode;
  counts: Record<Verdict, number>;
  exchanges: number;
  assertionEvents: number;
  smuggledEvents: number;
  seconds: number;
  passed: boolean;
  reason: string;
}

export function verdictLabel(result: AttackResult): string {
  if (!result.mode.expectLeak) return result.verdict === "leak" ? "LEAK" : result.verdict;
  if (result.verdict === "leak") return "leak (expected, detected)";
  if (result.verdict === "violation") return "violation (expected)";
  // With every lock off the owners' checks are not asserted: damage is the point of the mode.
  if (result.verdict === "control ok") return "control (not checked)";
  return result.verdict;
}

export function printModeTable(backend: string, mode: Mode, runs: SuiteRun[]): void {
  console.log(`\n[${backend}] mode ${mode.id}: ${mode.name}`);
  console.log(`  mode ${"chat".padEnd(10)} ${"attack".padEnd(48)} ${"path".padEnd(40)} result`);
  for (const result of runs.flatMap((r) => r.results)) {
    const detail = result.detail ? `  ${truncate(result.detail, 110)}` : "";
    console.log(`  ${String(mode.id).padEnd(4)} ${result.variant.padEnd(10)} ${truncate(result.attack.name, 48).padEnd(48)} ${truncate(result.attack.path, 40).padEnd(40)} ${verdictLabel(result)}${detail}`);
    // An unexpected leak gets its evidence printed, a few distinct needles with the request.
    if (result.verdict === "leak" && !mode.expectLeak) {
      const distinct = [...new Map(result.findings.map((f) => [`${f.needle.kind}:${f.needle.value}`, f])).values()];
      for (const finding of distinct.slice(0, 5)) console.log(`      ! ${describeFinding(finding)}`);
    }
  }
}

export function summarize(backend: string, mode: Mode, runs: SuiteRun[]): ModeSummary {
  const results = runs.flatMap((r) => r.results);
  const counts = Object.fromEntries(
    (["blocked", "blocked (assertion)", "leak", "violation", "error", "control ok", "control failed"] as Verdict[]).map((v) => [
      v,
      results.filter((r) => r.verdict === v).length,
    ]),
  ) as Record<Verdict, number>;
  const assertionEvents = runs.reduce((n, r) => n + r.assertionEvents, 0);
  const { passed, reason } = mode.expectLeak ? judgeBlindness(mode, results) : judgeLocks(results, assertionEvents);
  return {
    backend,
    mode,
    counts,
    exchanges: results.reduce((n, r) => n + r.exchanges, 0),
    assertionEvents,
    smuggledEvents: runs.reduce((n, r) => n + r.smuggledEvents, 0),
    seconds: runs.reduce((n, r) => n + r.seconds, 0),
    passed,
    reason,
  };
}

/** With a lock on: nothing may leak, fail, or even reach the assertion (a lock in front failed). */
function judgeLocks(results: AttackResult[], assertionEvents: number): { passed: boolean; reason: string } {
  const failing = results.filter((r) => FAILS_WITH_LOCKS_ON.has(r.verdict));
  if (failing.length > 0) {
    return { passed: false, reason: `${failing.length} failing: ${failing.map((r) => `${r.attack.name} [${r.variant}: ${r.verdict}]`).slice(0, 4).join("; ")}` };
  }
  if (assertionEvents > 0) return { passed: false, reason: `the assembly assertion fired ${assertionEvents} times: a lock in front of it failed` };
  return { passed: true, reason: "no leak" };
}

/** With every lock off the eval must see leaks, or it is blind. */
function judgeBlindness(mode: Mode, results: AttackResult[]): { passed: boolean; reason: string } {
  const leaked = results.filter((r) => r.verdict === "leak");
  const missed = (mode.mustLeak ?? []).flatMap((name) => {
    const runs = results.filter((r) => r.attack.name === name);
    return runs.length === 0 ? [`${name} (not run)`] : runs.filter((r) => r.verdict !== "leak").map((r) => `${name} [${r.variant}]`);
  });
  if (leaked.length === 0) return { passed: false, reason: "BLIND: no leak detected with every lock off" };
  if (missed.length > 0) return { passed: false, reason: `BLIND on: ${missed.join("; ")}` };
  return { passed: true, reason: `the eval detects leaks (${leaked.length} attacks leaked with the locks off)` };
}

export function printSummary(summaries: ModeSummary[], totalSeconds: number, availability: readonly AvailabilityRun[] = []): void {
  console.log("\nSummary");
  for (const s of summaries) {
    const c = s.counts;
    console.log(
      `  [${s.backend}] mode ${s.mode.id} ${s.mode.name.padEnd(32)} ${s.passed ? "PASS" : "FAIL"}  ` +
        `blocked ${c.blocked}, blocked (assertion) ${c["blocked (assertion)"]}, leak ${c.leak}, violation ${c.violation}, ` +
        `error ${c.error}, controls ${c["control ok"]} ok/${c["control failed"]} failed; ` +
        `${s.exchanges} requests, security events: assertion ${s.assertionEvents}, smuggled id ${s.smuggledEvents}; ${s.seconds.toFixed(1)} s — ${s.reason}`,
    );
  }
  for (const run of availability) console.log(availabilitySummaryLine(run));
  const failed = [
    ...summaries.filter((s) => !s.passed).map((s) => `${s.backend} mode ${s.mode.id}`),
    ...availability.filter((a) => !a.passed).map((a) => `${a.backend} availability`),
  ];
  console.log(
    failed.length === 0
      ? `\nisolation eval PASSED in ${totalSeconds.toFixed(1)} s`
      : `\nisolation eval FAILED in ${totalSeconds.toFixed(1)} s (${failed.join(", ")})`,
  );
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
