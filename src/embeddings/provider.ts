import type { Flow } from "../flow/fair-queue.js";

/**
 * One interface for every embedding backend. `model` is recorded on every chunk; search only
 * compares vectors whose model equals the active provider's, so a model switch is an explicit
 * re-embed rather than silently meaningless distances.
 */
export interface EmbeddingProvider {
  /** Stable id stored with each chunk, e.g. `local:use-lite-512`, `openai:text-embedding-3-small`. */
  readonly model: string;
  readonly dimensions: number;
  /**
   * Returns one unit-length vector per input, in order. `flow` says whose work it is, so that a
   * provider with a queue serves tenants fairly and interactive work first.
   */
  embed(texts: readonly string[], flow?: Flow): Promise<number[][]>;
  /** The lane of a remote provider (its concurrency and breaker), for the metrics. */
  readonly lane?: { readonly name: string; readonly inFlight: number; readonly queued: number; readonly breakerState: "closed" | "half_open" | "open" };
  close?(): Promise<void>;
}

/** Unit length, so cosine distance in pgvector and dot products agree. */
export function normalize(vector: ArrayLike<number>): number[] {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += vector[i]! * vector[i]!;
  const norm = Math.sqrt(sum) || 1;
  return Array.from(vector, (v) => v / norm);
}
