import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import { ProviderUnavailableError, UpstreamError } from "../core/errors.js";
import type { Flow } from "../flow/fair-queue.js";
import { isProviderFault, type ProviderLane } from "../flow/provider-lane.js";
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
  /** False when the provider sent no usage (a dropped stream) and the counts are Fence's estimate. */
  usageReported: boolean;
}

/** A provider attempt that failed: no charge, kept as the technical record of the request. */
export interface FailedAttempt {
  attempt: number;
  status: number | undefined;
  message: string;
}

export interface LlmCallOptions {
  model: string;
  maxTokens: number;
  signal?: AbortSignal;
  /** The tenant's place in the provider lane's fair queue. */
  flow?: Flow;
  /** Called for every failed attempt, retried or not, so each reaches the ledger. */
  onFailedAttempt?: (failure: FailedAttempt) => void;
}

export interface LlmClientOptions {
  baseUrl: string;
  apiKey: string | undefined;
  model: string;
  timeoutMs: number;
  maxRetries: number;
}

/**
 * Any OpenAI-compatible chat endpoint, through the official `openai` client. Fence retries itself
 * (the client's own retries are off) so that every attempt is visible to metering: a failed
 * attempt is recorded without charge, and the successful one points back at the first. Backoff is
 * exponential with full jitter and honours the provider's Retry-After. Streams are retried only
 * before their first token. Called outside any database transaction.
 */
export class LlmClient {
  private readonly client: OpenAI;

  constructor(
    readonly options: LlmClientOptions,
    private readonly lane: ProviderLane,
  ) {
    this.client = new OpenAI({
      baseURL: options.baseUrl,
      apiKey: options.apiKey ?? "unused",
      timeout: options.timeoutMs,
      maxRetries: 0,
    });
  }

  get model(): string {
    return this.options.model;
  }

  async complete(messages: PromptMessage[], call: LlmCallOptions): Promise<Completion> {
    return this.withRetries(call, async () => {
      const response = await this.lane.run(
        () =>
          this.client.chat.completions.create(
            { model: call.model, messages, temperature: 0, max_tokens: call.maxTokens },
            { signal: call.signal },
          ),
        (error) => isProviderFault(error, call.signal),
        call.flow,
      );
      const choice = response.choices[0];
      return {
        text: choice?.message.content ?? "",
        usage: toUsage(response.usage),
        finishReason: choice?.finish_reason ?? null,
        usageReported: Boolean(response.usage),
      };
    });
  }

  /**
   * Streams tokens; the returned completion carries the provider's final usage
   * (`include_usage`). If the stream ends without it (dropped connection, client gone), the
   * completion says `usageReported: false` and carries the text received so far.
   */
  async *stream(messages: PromptMessage[], call: LlmCallOptions): AsyncGenerator<string, Completion> {
    // The lane place is held for the whole stream: an open stream is a call in flight upstream.
    const { stream, pass } = await this.withRetries(call, async () => {
      const pass = await this.lane.enter(call.flow);
      try {
        const stream = await this.client.chat.completions.create(
          {
            model: call.model,
            messages,
            temperature: 0,
            max_tokens: call.maxTokens,
            stream: true,
            stream_options: { include_usage: true },
          },
          { signal: call.signal },
        );
        return { stream, pass };
      } catch (error) {
        if (isProviderFault(error, call.signal)) pass.failed();
        else pass.abandoned();
        throw error;
      }
    });
    let text = "";
    let usage: TokenUsage | undefined;
    let finishReason: string | null = null;
    let failure: unknown;
    try {
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
      failure = error;
    } finally {
      // Ends the pass once, whichever way the stream ended (the consumer may also stop reading).
      if (failure !== undefined && isProviderFault(failure, call.signal)) pass.failed();
      else if (failure !== undefined || usage === undefined) pass.abandoned();
      else pass.succeeded();
    }
    const completion = { text, usage: usage ?? ZERO_USAGE, finishReason, usageReported: usage !== undefined };
    if (failure !== undefined && !call.signal?.aborted) throw new StreamInterruptedError(completion, failure);
    return completion;
  }

  private async withRetries<T>(call: LlmCallOptions, send: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (error) {
        // Refused by the lane or the breaker: the provider was not called, so there is nothing to
        // record and nothing to retry.
        if (error instanceof ProviderUnavailableError) throw error;
        const status = (error as { status?: number }).status;
        call.onFailedAttempt?.({ attempt, status, message: describe(error) });
        if (call.signal?.aborted || attempt > this.options.maxRetries || !retryable(status)) throw asUpstreamError(error);
        await sleep(backoffMs(attempt, error), undefined, { signal: call.signal }).catch(() => undefined);
      }
    }
  }
}

/** A stream that failed after tokens were sent: carries what arrived, for metering. */
export class StreamInterruptedError extends UpstreamError {
  constructor(
    readonly partial: Completion,
    cause: unknown,
  ) {
    super(`The language model stream was interrupted: ${describe(cause)}`);
  }
}

const ZERO_USAGE: TokenUsage = { input_tokens: 0, output_tokens: 0, total_tokens: 0 };

function retryable(status: number | undefined): boolean {
  return status === undefined || status === 408 || status === 409 || status === 429 || status >= 500;
}

/** Full-jitter exponential backoff, but never sooner than the provider's Retry-After. */
function backoffMs(attempt: number, error: unknown): number {
  const headers = (error as { headers?: Headers | Record<string, string> }).headers;
  const read = (name: string) =>
    headers instanceof Headers ? headers.get(name) : (headers as Record<string, string> | undefined)?.[name];
  const retryAfterMs = Number(read("retry-after-ms")) || Number(read("retry-after")) * 1000 || 0;
  const jitter = Math.random() * Math.min(8000, 250 * 2 ** (attempt - 1));
  return Math.min(20_000, Math.max(retryAfterMs, jitter));
}

function toUsage(usage: OpenAI.CompletionUsage | undefined | null): TokenUsage {
  return {
    input_tokens: usage?.prompt_tokens ?? 0,
    output_tokens: usage?.completion_tokens ?? 0,
    total_tokens: usage?.total_tokens ?? 0,
  };
}

function describe(error: unknown): string {
  const status = (error as { status?: number }).status;
  return `${status ? `HTTP ${status}: ` : ""}${(error as Error)?.message ?? String(error)}`.slice(0, 300);
}

function asUpstreamError(error: unknown): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const status = (error as { status?: number }).status;
  return new UpstreamError(`The language model provider failed${status ? ` (HTTP ${status})` : ""}.`);
}
