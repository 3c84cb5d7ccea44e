import type { GeneratorResult } from "./generator-protocol.js";
import { total, type Counts } from "./outcomes.js";
import type { BuildShapeResult } from "./phases.js";
import type { Operation } from "./shapes.js";
import { VICTIM_OPS, type VictimOp, type VictimResult } from "./victim.js";

/** Issue #16's goals, on this 2-core machine, both backends. */
export const GOALS = {
  /** Victim p99 under each flood ÷ its p99 alone, for search, chat and upload. */
  victimP99Ratio: 1.5,
  /** The aggressor's 2xx/s under the flood ÷ its 2xx/s alone (work-conserving, not a throttle). */
  aggressorShare: 0.8,
  /** Refused requests per second in the refused flood (shape a). */
  refusalsPerSecond: 5000,
} as const;

/** Statuses a limit answers with: refusals, as opposed to failures. */
const REFUSAL_STATUSES = new Set(["402", "429", "503"]);

export function isRefusal(key: string): boolean {
  return REFUSAL_STATUSES.has(key.split(" ")[0]!);
}

export function okPerSecond(result: GeneratorResult, op?: Operation): number {
  const ops = op ? [result.byOp[op]] : Object.values(result.byOp);
  return ops.reduce((n, o) => n + (o?.ok ?? 0), 0) / result.seconds;
}

/** Non-2xx answers per second by "status reason", over every operation. */
export function failedPerSecond(result: GeneratorResult): Counts {
  const out: Counts = {};
  for (const o of Object.values(result.byOp)) {
    for (const [key, n] of Object.entries(o?.failed ?? {})) out[key] = (out[key] ?? 0) + n / result.seconds;
  }
  return out;
}

export function refusalsPerSecond(result: GeneratorResult): number {
  return total(Object.fromEntries(Object.entries(failedPerSecond(result)).filter(([key]) => isRefusal(key))));
}

/** Non-2xx answers that are not a limit's refusal (500s, network errors): the flood broke something. */
export function failuresPerSecond(result: GeneratorResult): number {
  return total(Object.fromEntries(Object.entries(failedPerSecond(result)).filter(([key]) => !isRefusal(key))));
}

/** The aggressor's share of the capacity the victim leaves it. */
export function aggressorShare(r: BuildShapeResult): number {
  const alone = okPerSecond(r.aggressorAlone);
  return alone > 0 ? okPerSecond(r.flood.aggressor) / alone : Number.NaN;
}

export function p99Ratio(r: BuildShapeResult, op: VictimOp | "all"): number {
  const pick = (v: VictimResult) => (op === "all" ? v.all : v.ops[op].latency).p99;
  return pick(r.flood.victim) / pick(r.victimAlone);
}

/** Every victim request that did not answer 2xx, in either phase: each one is a failure of isolation. */
export function victimErrors(r: BuildShapeResult): { phase: "alone" | "flood"; op: VictimOp; key: string; n: number }[] {
  const out: { phase: "alone" | "flood"; op: VictimOp; key: string; n: number }[] = [];
  for (const [phase, v] of [
    ["alone", r.victimAlone],
    ["flood", r.flood.victim],
  ] as const) {
    for (const op of VICTIM_OPS) for (const [key, n] of Object.entries(v.ops[op].failed)) out.push({ phase, op, key, n });
  }
  return out;
}

export interface Verdict {
  ratios: Record<VictimOp, { ratio: number; met: boolean }>;
  victimErrors: number;
  /** Undefined for the refused flood, whose aggressor is meant to get (almost) nothing. */
  share?: { share: number; met: boolean };
  /** Shape (a) only. */
  refusals?: { perSecond: number; met: boolean };
  met: boolean;
}

/**
 * Whether a build meets the goals in a shape. A ratio is met only with no victim error in that
 * operation: a refused or lost request has no latency, and its absence would flatter the p99.
 */
export function verdict(r: BuildShapeResult, refusedFlood: boolean): Verdict {
  const ratios = {} as Verdict["ratios"];
  for (const op of VICTIM_OPS) {
    const ratio = p99Ratio(r, op);
    const errors = total(r.flood.victim.ops[op].failed) + total(r.victimAlone.ops[op].failed);
    ratios[op] = { ratio, met: Number.isFinite(ratio) && ratio <= GOALS.victimP99Ratio && errors === 0 };
  }
  const errors = victimErrors(r).reduce((n, e) => n + e.n, 0);
  const share = refusedFlood ? undefined : { share: aggressorShare(r), met: aggressorShare(r) >= GOALS.aggressorShare };
  const perSecond = refusalsPerSecond(r.flood.aggressor);
  const refusals = refusedFlood ? { perSecond, met: perSecond >= GOALS.refusalsPerSecond } : undefined;
  const met = VICTIM_OPS.every((op) => ratios[op].met) && errors === 0 && (share?.met ?? true) && (refusals?.met ?? true);
  return { ratios, victimErrors: errors, share, refusals, met };
}
