/**
 * Warms a freshly started Fence until its latency has settled, for baselines that a later window is
 * compared with. A fixed warm-up is a guess: a new process's searches (each embedding a new query)
 * keep getting faster for a few hundred requests (PGlite p50 39 ms in the first 40, 28-31 ms after
 * 500; Postgres 24-28 ms, then 20-22 ms; the model threads warm within ~20 calls each, the rest is
 * the process's own JIT), and a baseline taken early makes every later ratio look better than it is.
 *
 * `block` runs one block of requests and returns its median latency. Blocks run until one's median
 * is within `tolerance` of the one before it (after at least `minBlocks`); `maxBlocks` bounds the
 * wait on a machine that never settles, and the result says so rather than failing the caller.
 */
export interface WarmUpResult {
  blocks: number;
  /** The medians of the blocks, in ms, in order: the caller may print how the process settled. */
  medians: number[];
  settled: boolean;
}

export interface WarmUpOptions {
  minBlocks?: number;
  maxBlocks?: number;
  /** Two successive medians within this fraction of each other count as settled. */
  tolerance?: number;
}

export async function warmUntilSteady(block: () => Promise<number>, options: WarmUpOptions = {}): Promise<WarmUpResult> {
  const { minBlocks = 4, maxBlocks = 12, tolerance = 0.2 } = options;
  const medians: number[] = [];
  while (medians.length < maxBlocks) {
    medians.push(await block());
    const [previous, last] = medians.slice(-2);
    if (medians.length >= minBlocks && previous !== undefined && last !== undefined && Math.abs(last - previous) <= tolerance * previous) {
      return { blocks: medians.length, medians, settled: true };
    }
  }
  return { blocks: medians.length, medians, settled: false };
}
