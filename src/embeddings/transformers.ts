import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { env, pipeline, type FeatureExtractionPipeline } from "@xenova/transformers";
import { normalize, type EmbeddingProvider } from "./provider.js";

export interface TransformersEmbeddingsOptions {
  /** Hugging Face style id, e.g. `Xenova/all-MiniLM-L6-v2`, resolved under `modelsDir`. */
  model: string;
  /** Folder holding `<org>/<name>/{config.json, tokenizer.json, onnx/…}`; default is the library's. */
  modelsDir?: string;
  /** Off for air-gapped deployments: a missing model must fail loudly, not reach for the hub. */
  allowRemote: boolean;
  batchSize?: number;
}

/**
 * Any sentence-embedding model exported to ONNX for transformers.js (mean pooling + L2 norm, the
 * sentence-transformers recipe), run in this process on onnxruntime.
 *
 * Like the USE provider, inference is synchronous CPU work, so large inputs are embedded in batches
 * with a yield in between to keep other tenants' requests responsive.
 */
export class TransformersEmbeddings implements EmbeddingProvider {
  private constructor(
    readonly model: string,
    readonly dimensions: number,
    private readonly extractor: FeatureExtractionPipeline,
    private readonly batchSize: number,
  ) {}

  static async load(options: TransformersEmbeddingsOptions): Promise<TransformersEmbeddings> {
    // `env` is process-global in transformers.js; set it right before loading so this load sees
    // exactly the configuration it was asked for.
    env.allowRemoteModels = options.allowRemote;
    if (options.modelsDir) env.localModelPath = options.modelsDir;
    try {
      const extractor = await pipeline("feature-extraction", options.model);
      // Dimensions are not reliably in config.json (hidden_size vs. a projection head), so ask the
      // model itself; this also proves the graph runs before we accept traffic.
      const probe = await extractor("dimension probe", { pooling: "mean", normalize: true });
      const dimensions = probe.dims.at(-1) ?? 0;
      return new TransformersEmbeddings(`transformers:${options.model}`, dimensions, extractor, options.batchSize ?? 16);
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      const remote = options.allowRemote ? "" : " Remote model download is off (allowRemote=false), so the model must already be in that folder.";
      throw new Error(
        `Could not load transformers embedding model "${options.model}" from models folder "${env.localModelPath}".${remote} Cause: ${reason}`,
        { cause },
      );
    }
  }

  async embed(texts: readonly string[]): Promise<number[][]> {
    const out: number[][] = [];
    for (let i = 0; i < texts.length; i += this.batchSize) {
      const batch = texts.slice(i, i + this.batchSize);
      const output = await this.extractor(batch, { pooling: "mean", normalize: true });
      // The pipeline normalizes in float32; re-normalizing in float64 keeps the unit-length
      // contract exact for pgvector's cosine distance.
      for (const row of output.tolist() as number[][]) out.push(normalize(row));
      if (i + this.batchSize < texts.length) await yieldToEventLoop();
    }
    return out;
  }

  async close(): Promise<void> {
    await this.extractor.dispose();
  }
}
