import type { FenceConfig } from "./config.js";
import type { QueueDiscipline } from "../flow/fair-queue.js";
import type { EmbeddingProvider } from "../embeddings/provider.js";

/**
 * Builds the configured provider; each is imported lazily so a deployment loads only its own.
 * `discipline` is the benchmarks' FIFO baseline: the local model then keeps no thread in reserve.
 */
export async function createEmbeddingProvider(config: FenceConfig["embeddings"], discipline?: QueueDiscipline): Promise<EmbeddingProvider> {
  switch (config.provider) {
    case "local": {
      const { LocalUseEmbeddings } = await import("../embeddings/local-use.js");
      return LocalUseEmbeddings.load({ threads: config.threads, reservedThreads: config.reservedThreads, discipline });
    }
    case "transformers": {
      const { TransformersEmbeddings } = await import("../embeddings/transformers.js");
      return TransformersEmbeddings.load({
        model: config.model,
        modelsDir: config.modelsDir,
        allowRemote: config.allowRemote,
      });
    }
    case "openai": {
      const { OpenAICompatibleEmbeddings } = await import("../embeddings/openai-compatible.js");
      return OpenAICompatibleEmbeddings.connect(config);
    }
  }
}
