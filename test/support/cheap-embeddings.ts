import { createHash } from "node:crypto";
import { normalize, type EmbeddingProvider } from "../../src/embeddings/provider.js";

/**
 * Deterministic vectors from a hash of each text, under the default model's name and size: for
 * suites that send hundreds of chunks and test parsing, not retrieval quality, without spending
 * a model thread's minutes on them.
 */
export class CheapEmbeddings implements EmbeddingProvider {
  readonly model = "local:use-lite-512";
  readonly dimensions = 512;

  embed(texts: readonly string[]): Promise<number[][]> {
    return Promise.resolve(texts.map((text) => vectorOf(text)));
  }
}

function vectorOf(text: string): number[] {
  const seed = createHash("sha256").update(text).digest();
  return normalize(Array.from({ length: 512 }, (_, i) => seed[i % seed.length]! - 127.5 + (i % 7)));
}
