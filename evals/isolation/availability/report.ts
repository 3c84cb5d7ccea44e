import { ms, P99_RATIO_LIMIT, STALL_LIMIT_MS, VICTIM_TIMEOUT_MS } from "./judge.js";
import type { AvailabilityRun } from "./section.js";

/**
 * The section's printed report: the victim's baseline, then one line per hostile input with the
 * victim's latency under it, the ratio to the baseline, the victim's errors, the longest
 * /healthz wait (the instance's worst event-loop stall) and what the attacker got back; failing
 * lines say which rule they broke.
 */
export function printAvailability(run: AvailabilityRun): void {
  console.log(`\n[${run.backend}] availability: victim search + /healthz while another tenant sends hostile input`);
  if (run.skipped) {
    console.log(`  ${run.skipped}`);
    return;
  }
  console.log(
    `  rules: victim p99 ≤ ${P99_RATIO_LIMIT}× its baseline p99; no victim request fails (non-2xx, network error, or over ${ms(VICTIM_TIMEOUT_MS)}); ` +
      `no /healthz probe waits over ${ms(STALL_LIMIT_MS)} (the event loop's longest block, measured from outside)`,
  );
  const b = run.baseline!;
  const baselineErrors = run.baselineErrors.length > 0 ? `  FAIL: ${run.baselineErrors.length} victim errors with no attack` : "";
  const w = run.warmUp;
  const warm = w ? ` after ${w.blocks} warm-up blocks (p50 ${w.medians.map(ms).join(" → ")}${w.settled ? "" : ", not settled"})` : "";
  console.log(`  baseline (victim alone): ${b.samples} searches, p50 ${ms(b.p50)}, p99 ${ms(b.p99)}, max ${ms(b.max)}${warm}${baselineErrors}`);
  console.log(
    `  ${"hostile input".padEnd(50)} ${"row".padEnd(9)} ${"n".padStart(4)} ${"p50".padStart(7)} ${"p99".padStart(7)} ${"max".padStart(7)} ${"×base".padStart(6)} ${"errors".padStart(6)} ${"stall".padStart(8)}  ${"result".padEnd(6)} attacker got`,
  );
  for (const w of run.windows) {
    const ratio = Number.isFinite(w.judgement.ratio) ? w.judgement.ratio.toFixed(1) : "—";
    const stall = `${w.window.stallOngoing ? "≥" : ""}${ms(w.window.worstStallMs)}`;
    console.log(
      `  ${truncate(w.input.name, 50).padEnd(50)} ${w.input.rows.padEnd(9)} ${String(w.window.searches).padStart(4)} ${ms(w.victim.p50).padStart(7)} ${ms(w.victim.p99).padStart(7)} ` +
        `${ms(w.victim.max).padStart(7)} ${ratio.padStart(6)} ${String(w.window.errors.length).padStart(6)} ${stall.padStart(8)}  ${(w.judgement.passed ? (w.judgement.open ? "open" : "ok") : "FAIL").padEnd(6)} ${truncate(w.attacker, 60)}`,
    );
    for (const failure of w.judgement.failures) console.log(`      ! ${failure}`);
    if (w.judgement.open) console.log(`      ~ ${w.judgement.open}`);
    if (w.firstRatio !== undefined) {
      const retaken = w.retakenBaseline ? `; judged against the victim alone again just before it, p99 ${ms(w.retakenBaseline.p99)}` : "";
      console.log(`      (second window: the first measured p99 ${w.firstRatio.toFixed(1)}× alone, over the limit on that rule only${retaken})`);
    }
    if (w.restarted) console.log("      (instance frozen or still busy at the deadline: killed and restarted for the next attack)");
  }
  for (const input of run.notRun) console.log(`  ${truncate(input.name, 50).padEnd(50)} not run: ${input.reason}`);
  if (run.stopped) console.log(`  ! section stopped: ${run.stopped}`);
}

export function availabilitySummaryLine(run: AvailabilityRun): string {
  if (run.skipped) return `  [${run.backend}] availability                          skipped — ${run.skipped}`;
  const failed = run.windows.filter((w) => !w.judgement.passed);
  const open = run.windows.filter((w) => w.judgement.passed && w.judgement.open);
  const withinRules = `the victim within ${P99_RATIO_LIMIT}× its p99, error-free, no stall over ${ms(STALL_LIMIT_MS)}`;
  const reason =
    failed.length === 0 && run.baselineErrors.length === 0
      ? open.length === 0
        ? `every hostile input${run.notRun.length > 0 ? " run" : ""} kept ${withinRules}`
        : `the others kept ${withinRules}; open within their ceilings: ${open.map((w) => w.input.name).join("; ")}`
      : [run.baselineErrors.length > 0 ? "victim errs with no attack" : "", ...failed.map((w) => w.input.name)].filter(Boolean).join("; ");
  const stopped = run.stopped ? ` (section stopped early: ${run.stopped.slice(0, 200)})` : "";
  const counts =
    `${run.windows.length - failed.length - open.length}/${run.windows.length} attacks ok${open.length > 0 ? `, ${open.length} known open` : ""}` +
    (run.notRun.length > 0 ? `, ${run.notRun.length} not run (known to freeze this backend: ${run.notRun.map((input) => input.name).join("; ")})` : "");
  return (
    `  [${run.backend}] availability ${"".padEnd(24)} ${run.passed ? "PASS" : "FAIL"}  ${counts}; ` +
    `${run.seconds.toFixed(1)} s — ${failed.length > 0 ? `${failed.length} failing: ` : ""}${reason}${stopped}`
  );
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
