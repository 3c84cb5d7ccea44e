import type { BudgetGuard, Hold } from "../metering/budget-guard.js";
import { estimateTokens, type UsageRecord } from "../metering/usage-event.js";
import type { TenantContext } from "../core/tenant-context.js";
import { StreamInterruptedError, type Completion, type FailedAttempt, type LlmCallOptions } from "./llm-client.js";
import type { PromptMessage } from "./prompt.js";

export interface MeteredCallSpec {
  messages: PromptMessage[];
  /** Ledger id of the call; failed attempts get `<eventId>:attempt-<n>`. */
  eventId: string;
  provider: string;
  inputEstimate: number;
  maxTokens: number;
  signal?: AbortSignal | undefined;
}

/**
 * One LLM call under a budget reservation, settled exactly once whatever happens:
 * - success: charged at the provider's reported usage (a retry links to the first failed attempt);
 * - every failed attempt: a `failed` row with no charge (the technical record);
 * - a stream the client abandons: charged for what was produced, counted by Fence (estimated);
 * - a stream the provider drops: `failed`, as the provider reports no usage for it.
 */
export class MeteredCall {
  private readonly failures: FailedAttempt[] = [];
  private settled = false;

  constructor(
    private readonly ctx: TenantContext,
    private readonly budgets: BudgetGuard,
    readonly hold: Hold,
    private readonly spec: MeteredCallSpec,
  ) {}

  async run(send: (messages: PromptMessage[], options: LlmCallOptions) => Promise<Completion>): Promise<Completion> {
    try {
      const completion = await send(this.spec.messages, this.options());
      await this.settle(this.charged(completion));
      return completion;
    } catch (error) {
      await this.settle(undefined);
      throw error;
    }
  }

  async *stream(
    open: (messages: PromptMessage[], options: LlmCallOptions) => AsyncGenerator<string, Completion>,
  ): AsyncGenerator<{ type: "token"; text: string }, Completion> {
    const generator = open(this.spec.messages, this.options());
    let text = "";
    try {
      let step = await generator.next();
      while (!step.done) {
        text += step.value;
        yield { type: "token", text: step.value };
        step = await generator.next();
      }
      await this.settle(this.charged(step.value));
      return step.value;
    } catch (error) {
      const dropped = error instanceof StreamInterruptedError ? this.failed(error.message) : undefined;
      await this.settle(dropped);
      throw error;
    } finally {
      // The consumer stopped reading (the client went away): charge what the provider produced.
      if (!this.settled) {
        await generator.return(undefined as never).catch(() => undefined);
        await this.settle(this.charged({ text, usage: { input_tokens: 0, output_tokens: 0, total_tokens: 0 }, finishReason: null, usageReported: false }));
      }
    }
  }

  private options(): LlmCallOptions {
    return {
      model: this.hold.model,
      maxTokens: this.spec.maxTokens,
      signal: this.spec.signal,
      flow: { id: this.ctx.tenantId, weight: this.hold.settings.plan.schedulingWeight, priority: "interactive" },
      onFailedAttempt: (failure) => this.failures.push(failure),
    };
  }

  private charged(completion: Completion): UsageRecord {
    const reported = completion.usageReported;
    return {
      eventId: this.spec.eventId,
      feature: "chat",
      provider: this.spec.provider,
      model: this.hold.model,
      inputTokens: reported ? completion.usage.input_tokens : this.spec.inputEstimate,
      outputTokens: reported ? completion.usage.output_tokens : estimateTokens(completion.text),
      status: "charged",
      usageEstimated: !reported,
      retryOf: this.failures.length > 0 ? `${this.spec.eventId}:attempt-1` : undefined,
    };
  }

  /** A provider call that cost nothing: the technical record, linked to the first attempt. */
  private failed(error: string, eventId = this.spec.eventId, isFirstAttempt = this.failures.length === 0): UsageRecord {
    return {
      eventId,
      feature: "chat",
      provider: this.spec.provider,
      model: this.hold.model,
      inputTokens: 0,
      outputTokens: 0,
      status: "failed",
      error,
      retryOf: isFirstAttempt ? undefined : `${this.spec.eventId}:attempt-1`,
    };
  }

  private async settle(final: UsageRecord | undefined): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    const attempts = this.failures.map((f) => this.failed(f.message, `${this.spec.eventId}:attempt-${f.attempt}`, f.attempt === 1));
    await this.budgets.settle(this.ctx, this.hold, final ? [...attempts, final] : attempts);
  }
}
