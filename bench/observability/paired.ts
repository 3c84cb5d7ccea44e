import { percentile, seededRandom, shuffled, summarize, type LatencySummary } from "../stats.js";

/**
 * Round-robin measurement: in round i every variant sends request i, in a seeded random order, one
 * request at a time. Variants thus take turns request by request, so a change in the machine's
 * load (other processes, GC, timers) falls on all of them alike, and the same round gives each
 * variant the same input. `samples[v][i]` is variant v's time in round i.
 */
export async function roundRobin<V extends string>(
  variants: readonly V[],
  rounds: number,
  seed: number,
  send: (variant: V, round: number) => Promise<number>,
): Promise<Record<V, number[]>> {
  const random = seededRandom(seed);
  const samples = Object.fromEntries(variants.map((v) => [v, [] as number[]])) as Record<V, number[]>;
  for (let round = 0; round < rounds; round++) {
    for (const variant of shuffled(variants, random)) samples[variant].push(await send(variant, round));
  }
  return samples;
}

export interface Comparison {
  variant: LatencySummary;
  baseline: LatencySummary;
  /** variant p50 − baseline p50, ms. */
  addedP50: number;
  /** Median over rounds of (variant_i − baseline_i), ms: robust to drift shared by a round. */
  pairedMedian: number;
  /** 95 % bootstrap interval of `pairedMedian` (percentile method, seeded). */
  pairedCi: [number, number];
}

export function compare(variant: readonly number[], baseline: readonly number[], seed: number): Comparison {
  if (variant.length !== baseline.length) throw new Error("paired samples must have the same length");
  const diffs = variant.map((v, i) => v - baseline[i]!);
  const v = summarize(variant);
  const b = summarize(baseline);
  return { variant: v, baseline: b, addedP50: v.p50 - b.p50, pairedMedian: median(diffs), pairedCi: bootstrapMedianCi(diffs, seed) };
}

function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

function bootstrapMedianCi(diffs: readonly number[], seed: number, resamples = 2000): [number, number] {
  const random = seededRandom(seed);
  const medians: number[] = [];
  const draw = new Array<number>(diffs.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < diffs.length; i++) draw[i] = diffs[Math.floor(random() * diffs.length)]!;
    medians.push(median(draw));
  }
  medians.sort((a, b) => a - b);
  return [percentile(medians, 2.5), percentile(medians, 97.5)];
}
