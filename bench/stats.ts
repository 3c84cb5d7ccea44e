/** Latency summaries. Percentiles interpolate linearly between the two nearest samples. */
export interface LatencySummary {
  n: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    n: sorted.length,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/** Milliseconds since `start` (from `performance.now()`). */
export function since(start: number): number {
  return performance.now() - start;
}

/** Times one async call; returns its value and the elapsed milliseconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: since(start) };
}

/** Deterministic PRNG (mulberry32), so corpora and query orders are the same on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * `pairs` runs of each of two operations, alternating A B B A A B … so drift, caches and GC fall
 * on both sides alike. Returns each side's timings and, per pair, both results.
 */
export async function interleavedPairs<T>(
  pairs: number,
  a: (i: number) => Promise<T>,
  b: (i: number) => Promise<T>,
): Promise<{ a: number[]; b: number[]; results: [T, T][] }> {
  const times = { a: [] as number[], b: [] as number[] };
  const results: [T, T][] = [];
  const timed = async (side: "a" | "b", fn: (i: number) => Promise<T>, i: number) => {
    const start = performance.now();
    const result = await fn(i);
    times[side].push(since(start));
    return result;
  };
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) {
      const ra = await timed("a", a, i);
      results.push([ra, await timed("b", b, i)]);
    } else {
      const rb = await timed("b", b, i);
      results.push([await timed("a", a, i), rb]);
    }
  }
  return { ...times, results };
}
