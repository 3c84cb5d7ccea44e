import OpenAI from "openai";
import { UpstreamError } from "../errors.js";
import type { PromptMessage } from "./prompt.js";

export interface TokenUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
}

export interface Completion {
  text: string;
  usage: TokenUsage;
  finishReason: string | null;
}

export interface LlmClientOptions {
  baseUrl: string;
  apiKey: string | undefined;
  model: string;
  timeoutMs: number;
}

/**
 * Any OpenAI-compatible chat endpoint, through the official `openai` client (which already retries
 * 429/5xx with backoff and honours Retry-After). Called outside any database transaction.
 */
export class LlmClient {
  private readonly client: OpenAI;

  constructor(readonly options: LlmClientOptions) {
    this.client = new OpenAI({
      baseURL: options.baseUrl,
      apiKey: options.apiKey ?? "unused",
      timeout: options.timeoutMs,
      maxRetries: 2,
    });
  }

  get model(): string {
    return this.options.model;
  }

  async complete(messages: PromptMessage[]): Promise<Completion> {
    try {
      const response = await this.client.chat.completions.create({
        model: this.options.model,
        messages,
        temperature: 0,
      });
      const choice = response.choices[0];
      return {
        text: choice?.message.content ?? "",
        usage: toUsage(response.usage),
        finishReason: choice?.finish_reason ?? null,
      };
    } catch (error) {
      throw asUpstreamError(error);
    }
  }

  /**
   * Streams tokens; resolves `usage` from the provider's final chunk (`include_usage`), so a
   * streamed answer is counted from what the provider says it produced.
   */
  async *stream(messages: PromptMessage[], signal?: AbortSignal): AsyncGenerator<string, Completion> {
    let text = "";
    let usage: TokenUsage = { input_tokens: 0, output_tokens: 0, total_tokens: 0 };
    let finishReason: string | null = null;
    try {
      const stream = await this.client.chat.completions.create(
        {
          model: this.options.model,
          messages,
          temperature: 0,
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal },
      );
      for await (const chunk of stream) {
        if (chunk.usage) usage = toUsage(chunk.usage);
        const choice = chunk.choices[0];
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        const delta = choice?.delta?.content;
        if (delta) {
          text += delta;
          yield delta;
        }
      }
    } catch (error) {
      throw asUpstreamError(error);
    }
    return { text, usage, finishReason };
  }
}

function toUsage(usage: OpenAI.CompletionUsage | undefined | null): TokenUsage {
  return {
    input_tokens: usage?.prompt_tokens ?? 0,
    output_tokens: usage?.completion_tokens ?? 0,
    total_tokens: usage?.total_tokens ?? 0,
  };
}

function asUpstreamError(error: unknown): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const status = (error as { status?: number }).status;
  return new UpstreamError(`The language model provider failed${status ? ` (HTTP ${status})` : ""}.`);
}
