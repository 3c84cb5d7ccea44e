import type { VictimWindow } from "./victim.js";

/**
 * The availability contract (issue 14, "Proof"), as numbers. One tenant's hostile input may cost
 * that tenant an error, never another tenant its latency or its answers.
 */

/**
 * The victim's p99 under an attack may be at most this multiple of its p99 alone. Twice, not
 * "equal": two cores shared with the attacker's own (legitimately admitted) work cost the victim
 * something; a freeze or a queue costs it ten to a thousand times more (0.08 s → 0.65 s for the
 * key flood, 0.1 s → 20 s for the heading amplification), which is what this must catch.
 */
export const P99_RATIO_LIMIT = 2;
/**
 * The longest a single hostile input may hold the event loop. A second is long enough that no
 * bounded parse of an accepted body reaches it, and short enough that the instance keeps its job
 * leases (30 s) and its health checks by a wide margin.
 */
export const STALL_LIMIT_MS = 1000;
/**
 * A victim request slower than this is an error: the victim's own latency is tens of ms, so 2 s
 * is a frozen instance, not a slow one — and a short timeout keeps a freeze from hanging the eval.
 */
export const VICTIM_TIMEOUT_MS = 2000;

export interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

export interface Judgement {
  passed: boolean;
  /** Each broken rule, in words, for the report. */
  failures: string[];
  ratio: number;
  /** The p99 rule was over its limit but within a documented known-open allowance (see KnownOpen). */
  open?: string;
  /** Only the p99 rule failed (no error, no stall, nothing left running): worth one more window. */
  latencyOnly: boolean;
}

/**
 * A gap that is known, documented in docs/hostile-input.md and tracked as open: only the p99 ratio rule is
 * relaxed, and only up to `maxRatio`. Errors, stalls over the limit and a ratio beyond `maxRatio`
 * still fail, so a known gap cannot quietly grow, and a fix shows as a plain "ok".
 */
export interface KnownOpen {
  maxRatio: number;
  reason: string;
}

/** Nearest-rank percentile: with ~100 samples p99 is the second-slowest, a real observation. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function summarizeLatencies(latencies: readonly number[]): LatencySummary {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { samples: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
}

/** Counts repeated reasons: "search: timeout ×34, healthz: timeout". */
export function tally(reasons: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const r of reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  return [...counts].map(([r, n]) => (n > 1 ? `${r} ×${n}` : r)).join(", ");
}

export function judgeWindow(
  baseline: LatencySummary,
  window: VictimWindow,
  extraFailures: readonly string[] = [],
  knownOpen?: KnownOpen,
): Judgement {
  const under = summarizeLatencies(window.latencies);
  // With no successful search there is no p99: every search failed, which the errors rule reports.
  const ratio = under.samples === 0 ? Number.POSITIVE_INFINITY : under.p99 / baseline.p99;
  const failures: string[] = [];
  let open: string | undefined;
  let latencyFailed = false;
  if (ratio > P99_RATIO_LIMIT && under.samples > 0) {
    if (knownOpen && ratio <= knownOpen.maxRatio) open = `known open (p99 ${ratio.toFixed(1)}× ≤ ${knownOpen.maxRatio}×): ${knownOpen.reason}`;
    else {
      failures.push(`victim p99 ${ms(under.p99)} > ${P99_RATIO_LIMIT}× baseline ${ms(baseline.p99)}`);
      latencyFailed = true;
    }
  }
  if (window.errors.length > 0) failures.push(`${window.errors.length} victim requests failed (${tally(window.errors)})`);
  if (window.worstStallMs > STALL_LIMIT_MS) {
    failures.push(`event loop blocked ${window.stallOngoing ? "≥ " : ""}${ms(window.worstStallMs)} > ${ms(STALL_LIMIT_MS)}`);
  }
  failures.push(...extraFailures);
  return { passed: failures.length === 0, failures, ratio, latencyOnly: latencyFailed && failures.length === 1, ...(open ? { open } : {}) };
}

export function ms(value: number): string {
  if (!Number.isFinite(value)) return "—";
  // Two decimals under 10 s, so a stall just over the 1 s limit does not print as "1.0 s > 1.0 s".
  if (value >= 1000) return `${(value / 1000).toFixed(value < 10_000 ? 2 : 1)} s`;
  return `${Math.round(value)} ms`;
}
