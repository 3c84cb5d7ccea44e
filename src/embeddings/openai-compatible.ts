import OpenAI from "openai";
import { ProviderUnavailableError, UpstreamError } from "../core/errors.js";
import type { Flow } from "../flow/fair-queue.js";
import { isProviderFault, ProviderLane } from "../flow/provider-lane.js";
import { normalize, type EmbeddingProvider } from "./provider.js";

export interface OpenAIEmbeddingsOptions {
  baseUrl: string;
  apiKey: string | undefined;
  model: string;
  dimensions: number | undefined;
  /** Inputs per request; providers cap the array length (OpenAI: 2048). */
  batchSize?: number;
  /** Requests in flight to the endpoint at once (its lane; see flow/provider-lane.ts). */
  maxConcurrency?: number;
  /** Requests per minute this instance may send (the endpoint's quota share). */
  maxPerMinute?: number | undefined;
  /** Slots of the lane no single tenant may take while others use it (see ProviderLane). */
  reservedSlots?: number | undefined;
}

/** Any OpenAI-compatible `/v1/embeddings` endpoint, through the official `openai` client. */
export class OpenAICompatibleEmbeddings implements EmbeddingProvider {
  readonly model: string;
  private constructor(
    private readonly client: OpenAI,
    private readonly options: OpenAIEmbeddingsOptions,
    /** Public so the metrics can watch it (in flight, queued, breaker state). */
    readonly lane: ProviderLane,
    readonly dimensions: number,
  ) {
    this.model = `openai:${options.model}${options.dimensions ? `@${options.dimensions}` : ""}`;
  }

  /** Probes the endpoint once to learn the dimension when it is not configured. */
  static async connect(options: OpenAIEmbeddingsOptions): Promise<OpenAICompatibleEmbeddings> {
    const client = new OpenAI({ baseURL: options.baseUrl, apiKey: options.apiKey ?? "unused", maxRetries: 2 });
    // Its own bulkhead, apart from the LLM's: a failing embeddings endpoint fails fast (503) for
    // ingestion and search without touching chat's capacity, and the other way round.
    const lane = new ProviderLane("embeddings", {
      maxConcurrent: options.maxConcurrency ?? 8,
      maxPerMinute: options.maxPerMinute,
      reservedSlots: options.reservedSlots,
      failureThreshold: 5,
      cooldownMs: 30_000,
      queueTimeoutMs: 30_000,
    });
    let dimensions = options.dimensions;
    if (!dimensions) {
      const probe = new OpenAICompatibleEmbeddings(client, options, lane, 0);
      dimensions = (await probe.request(["dimension probe"], undefined))[0]!.length;
    }
    return new OpenAICompatibleEmbeddings(client, options, lane, dimensions);
  }

  async embed(texts: readonly string[], flow?: Flow): Promise<number[][]> {
    const batchSize = this.options.batchSize ?? 256;
    const out: number[][] = [];
    for (let i = 0; i < texts.length; i += batchSize) {
      out.push(...(await this.request(texts.slice(i, i + batchSize), flow)));
    }
    return out;
  }

  private async request(input: readonly string[], flow: Flow | undefined): Promise<number[][]> {
    try {
      const response = await this.lane.run(
        () =>
          this.client.embeddings.create({
            model: this.options.model,
            input: [...input],
            ...(this.options.dimensions ? { dimensions: this.options.dimensions } : {}),
            encoding_format: "float",
          }),
        (error) => isProviderFault(error),
        flow,
      );
      const ordered = [...response.data].sort((a, b) => a.index - b.index);
      if (ordered.length !== input.length) {
        throw new UpstreamError(`Embedding provider returned ${ordered.length} vectors for ${input.length} inputs`);
      }
      return ordered.map((d) => normalize(d.embedding));
    } catch (error) {
      if (error instanceof UpstreamError || error instanceof ProviderUnavailableError) throw error;
      throw new UpstreamError(`Embedding provider failed: ${(error as Error).message}`);
    }
  }
}
