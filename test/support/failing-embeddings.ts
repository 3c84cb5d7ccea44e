import type { EmbeddingProvider } from "../../src/embeddings/provider.js";

/**
 * The real default model, with a switch: while `failWith` is set, every embedding call throws it.
 * Lets a test put an error of its choosing (a real database error, a stack overflow) inside an
 * upload's embed step, in the request or in a job, without touching Fence's code.
 */
export class SwitchableEmbeddings implements EmbeddingProvider {
  failWith: Error | undefined;

  constructor(private readonly inner: EmbeddingProvider) {}

  get model(): string {
    return this.inner.model;
  }

  get dimensions(): number {
    return this.inner.dimensions;
  }

  embed(texts: readonly string[], flow?: Parameters<EmbeddingProvider["embed"]>[1]): Promise<number[][]> {
    if (this.failWith) return Promise.reject(this.failWith);
    return this.inner.embed(texts, flow);
  }
}
