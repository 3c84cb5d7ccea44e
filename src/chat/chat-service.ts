import type { Database } from "../db/database.js";
import type { TenantCaches, CacheKeyParts } from "../cache/tenant-caches.js";
import { FeatureDisabledError } from "../core/errors.js";
import type { BudgetGuard, Hold } from "../metering/budget-guard.js";
import { estimateTokens } from "../metering/usage-event.js";
import type { SecurityEvents } from "../observability/security-events.js";
import { featureEnabled, readTenantSettings, type TenantSettings } from "../plans/tenant-settings.js";
import { assembleContext, type ContextPassage } from "../retrieval/assemble-context.js";
import type { Retriever } from "../retrieval/retriever.js";
import { readDataVersion } from "../tenancy/data-version.js";
import type { TenantContext } from "../core/tenant-context.js";
import type { RunRecords } from "../runs/run-records.js";
import { NOT_RECORDED, type RunRecorder, type RunSteps } from "../runs/run-recorder.js";
import { describeCompletion, describeHits, describePassages, recordAnswer, recordStream } from "./chat-run-steps.js";
import { extractiveAnswer } from "./extractive-answer.js";
import type { ChatAnswer, ChatStreamEvent, Citation } from "./chat-answer.js";
import type { Completion, LlmClient, TokenUsage } from "./llm-client.js";
import { MeteredCall } from "./metered-call.js";
import { buildGroundedPrompt, citedNumbers, PROMPT_VERSION, type ConversationTurn, type PromptMessage } from "./prompt.js";

export const NO_ANSWER = "I don't know based on your documents.";

export interface ChatOptions {
  k: number;
  minRelevance: number;
  maxPassages: number;
  maxContextChars: number;
  /** Provider id for pricing, the fallback model and the output cap (from the LLM settings). */
  provider: string;
  fallbackModel: string | undefined;
  maxOutputTokens: number;
}

/** Per-request identity for metering: the same operation id always yields the same ledger events. */
export interface ChatRequestMeta {
  operationId: string;
  signal?: AbortSignal;
  /** Told the tenant's settings, the question and the context's chunk ids once they are known (debug prompt logging). */
  onPrepared?: (prepared: { settings: TenantSettings; question: string; chunkIds: readonly string[] }) => void;
}

const ZERO_USAGE: TokenUsage = { input_tokens: 0, output_tokens: 0, total_tokens: 0 };

interface Prepared {
  settings: TenantSettings;
  passages: ContextPassage[];
  cacheKey: CacheKeyParts;
  cachedAnswer: ChatAnswer | undefined;
  useLlm: boolean;
}

/**
 * Grounded answers. Retrieval and the ownership assertion happen first, inside the tenant's
 * transactions; then the budget is reserved, the LLM called outside any transaction, and the
 * reservation settled to the provider's usage. Answers are cached per tenant, per model and per
 * data version (I5), so any document change makes old answers unreachable.
 */
export class ChatService {
  constructor(
    private readonly db: Database,
    private readonly retriever: Retriever,
    private readonly caches: TenantCaches,
    private readonly securityEvents: SecurityEvents,
    private readonly budgets: BudgetGuard,
    private readonly llm: LlmClient | undefined,
    private readonly options: ChatOptions,
    /** Run records (runs/): every answer, refusal and failure is recorded with its steps. */
    private readonly runs?: RunRecords,
  ) {}

  async answer(ctx: TenantContext, turns: ConversationTurn[], meta: ChatRequestMeta): Promise<ChatAnswer> {
    const run = this.startRun(ctx, turns);
    if (!run) return this.answerRecorded(ctx, turns, meta, NOT_RECORDED);
    return run.around(
      () => this.answerRecorded(ctx, turns, meta, run),
      (answer) => recordAnswer(run, answer),
    );
  }

  private async answerRecorded(ctx: TenantContext, turns: ConversationTurn[], meta: ChatRequestMeta, run: RunSteps): Promise<ChatAnswer> {
    const prepared = await this.prepare(ctx, turns, run, meta);
    if (prepared.cachedAnswer) return prepared.cachedAnswer;
    if (prepared.passages.length === 0) return this.noAnswer(prepared);
    if (!prepared.useLlm) return this.cache(ctx, prepared, this.extractive(turns, prepared));

    const call = await this.startCall(ctx, turns, prepared, meta, run);
    const completion = await run.step(
      "model_call",
      () => call.run((messages, options) => this.llm!.complete(messages, options)),
      describeCompletion,
      this.modelCallDetail(call),
    );
    return this.cache(ctx, prepared, this.fromCompletion(completion, prepared, call.hold));
  }

  /**
   * The same answer as a stream of events: tokens as they arrive, then citations, then done.
   * Retrieval, the ownership assertion and the budget check run before this resolves, so their
   * failures are ordinary HTTP errors; only the LLM's own failures can arrive mid-stream.
   */
  async openStream(ctx: TenantContext, turns: ConversationTurn[], meta: ChatRequestMeta): Promise<AsyncGenerator<ChatStreamEvent>> {
    const run = this.startRun(ctx, turns);
    if (!run) return this.openStreamRecorded(ctx, turns, meta, NOT_RECORDED);
    let events: AsyncGenerator<ChatStreamEvent>;
    try {
      events = await this.openStreamRecorded(ctx, turns, meta, run);
    } catch (error) {
      await run.finish(error);
      throw error;
    }
    return recordStream(run, events);
  }

  private async openStreamRecorded(
    ctx: TenantContext,
    turns: ConversationTurn[],
    meta: ChatRequestMeta,
    run: RunSteps,
  ): Promise<AsyncGenerator<ChatStreamEvent>> {
    const prepared = await this.prepare(ctx, turns, run, meta);
    if (!featureEnabled(prepared.settings, "chat.streaming")) throw new FeatureDisabledError("chat.streaming");
    if (prepared.cachedAnswer || prepared.passages.length === 0 || !prepared.useLlm) {
      const whole =
        prepared.cachedAnswer ??
        (prepared.passages.length === 0 ? this.noAnswer(prepared) : await this.cache(ctx, prepared, this.extractive(turns, prepared)));
      return replay(whole);
    }
    const call = await this.startCall(ctx, turns, prepared, meta, run);
    return this.streamLlm(ctx, prepared, call, run);
  }

  private async *streamLlm(ctx: TenantContext, prepared: Prepared, call: MeteredCall, run: RunSteps): AsyncGenerator<ChatStreamEvent> {
    const tokens = call.stream((messages, options) => this.llm!.stream(messages, options));
    const completion = yield* run.streamStep("model_call", tokens, describeCompletion, this.modelCallDetail(call));
    const result = await this.cache(ctx, prepared, this.fromCompletion(completion, prepared, call.hold));
    yield { type: "citations", citations: result.citations };
    yield { type: "done", answer: withoutBody(result) };
  }

  private async prepare(ctx: TenantContext, turns: ConversationTurn[], run: RunSteps, meta?: ChatRequestMeta): Promise<Prepared> {
    const question = turns[turns.length - 1]!.content;
    const { dataVersion, settings } = await this.db.withTenant(ctx, async (scope) => ({
      dataVersion: await readDataVersion(scope),
      settings: await readTenantSettings(scope),
    }));
    const useLlm = this.llm !== undefined && featureEnabled(settings, "chat.llm");
    const cacheKey: CacheKeyParts = {
      model: [useLlm ? this.llm!.model : "extractive", this.retriever.model, PROMPT_VERSION, JSON.stringify(settings.overrides)].join("|"),
      dataVersion,
      input: JSON.stringify(turns),
    };
    const cached = await this.caches.answers.get(ctx, cacheKey);
    run.note("answer_cache", { hit: cached !== undefined });
    if (cached) meta?.onPrepared?.({ settings, question, chunkIds: [] });
    if (cached) return { settings, passages: [], cacheKey, useLlm, cachedAnswer: { ...(cached.body as ChatAnswer), cached: true } };
    const k = settings.overrides.retrieval_k ?? this.options.k;
    const hits = await run.step("retrieval", () => this.retriever.search(ctx, question, k, run), describeHits, { k });
    const passages = await run.step(
      "context_assembly",
      () =>
        assembleContext(ctx, hits, this.securityEvents, {
          minRelevance: this.options.minRelevance,
          maxPassages: this.options.maxPassages,
          maxChars: this.options.maxContextChars,
          skipAssertion: this.db.mutations.disableAssemblyAssertion === true,
        }),
      describePassages,
    );
    meta?.onPrepared?.({ settings, question, chunkIds: passages.map((p) => p.chunkId) });
    return { settings, passages, cacheKey, cachedAnswer: undefined, useLlm };
  }

  /** Builds the prompt and reserves its budget (402 here, before any provider call). */
  private async startCall(ctx: TenantContext, turns: ConversationTurn[], prepared: Prepared, meta: ChatRequestMeta, run: RunSteps): Promise<MeteredCall> {
    const overrides = prepared.settings.overrides;
    const messages: PromptMessage[] = buildGroundedPrompt(prepared.passages, turns, {
      persona: overrides.persona,
      answerStyle: overrides.answer_style,
    });
    const inputTokens = estimateTokens(messages.map((m) => m.content).join("\n"));
    run.set({ provider: this.options.provider, model: prepared.settings.plan.preferredModel ?? this.llm!.model });
    const hold = await run.step(
      "budget_reservation",
      () =>
        this.budgets.reserve(ctx, {
          feature: "chat",
          provider: this.options.provider,
          operationId: meta.operationId,
          preferredModel: prepared.settings.plan.preferredModel ?? this.llm!.model,
          fallbackModel: prepared.settings.plan.fallbackModel ?? this.options.fallbackModel,
          inputTokens,
          maxOutputTokens: this.options.maxOutputTokens,
        }),
      (h) => ({ model: h.model, downgraded: h.downgraded }),
      { input_tokens_estimate: inputTokens, max_output_tokens: this.options.maxOutputTokens },
    );
    run.set({ model: hold.model });
    return new MeteredCall(ctx, this.budgets, hold, {
      messages,
      eventId: `${meta.operationId}:chat`,
      provider: this.options.provider,
      inputEstimate: inputTokens,
      maxTokens: this.options.maxOutputTokens,
      signal: meta.signal,
    });
  }

  /** A recorder for this chat, when runs are recorded: the question and the prompt version first. */
  private startRun(ctx: TenantContext, turns: ConversationTurn[]): RunRecorder | undefined {
    return this.runs?.start(ctx, "chat", { question: turns[turns.length - 1]!.content, promptVersion: PROMPT_VERSION });
  }

  private modelCallDetail(call: MeteredCall): Record<string, unknown> {
    return { provider: this.options.provider, model: call.hold.model, prompt_version: PROMPT_VERSION };
  }

  private extractive(turns: ConversationTurn[], prepared: Prepared): ChatAnswer {
    const extracted = extractiveAnswer(turns[turns.length - 1]!.content, prepared.passages);
    // Passages found by meaning alone, with no term of the question in any sentence, are too weak
    // to quote as an answer (the quality eval's unanswerable and other-tenant questions).
    if (extracted.sharesNoTerm) return this.noAnswer(prepared);
    return this.build(extracted.text, citationsFor(prepared.passages, extracted.citations), false, ZERO_USAGE, prepared, null, false);
  }

  private fromCompletion(completion: Completion, prepared: Prepared, hold: Hold): ChatAnswer {
    const trimmed = completion.text.trim();
    if (!trimmed || trimmed.startsWith(NO_ANSWER.slice(0, 20))) {
      return this.build(NO_ANSWER, [], true, completion.usage, prepared, hold.model, hold.downgraded);
    }
    const passages = prepared.passages;
    const cited = citedNumbers(trimmed).filter((n) => n >= 1 && n <= passages.length);
    const citations = citationsFor(passages, cited.length > 0 ? cited : passages.map((p) => p.citation));
    return this.build(trimmed, citations, false, completion.usage, prepared, hold.model, hold.downgraded);
  }

  private noAnswer(prepared: Prepared): ChatAnswer {
    return this.build(NO_ANSWER, [], true, ZERO_USAGE, prepared, null, false);
  }

  private build(
    answer: string,
    citations: Citation[],
    noAnswer: boolean,
    usage: TokenUsage,
    prepared: Prepared,
    model: string | null,
    downgraded: boolean,
  ): ChatAnswer {
    return {
      answer,
      citations,
      mode: prepared.useLlm ? "llm" : "extractive",
      no_answer: noAnswer,
      model,
      model_downgraded: downgraded,
      prompt_version: PROMPT_VERSION,
      usage,
      cached: false,
    };
  }

  private async cache(ctx: TenantContext, prepared: Prepared, answer: ChatAnswer): Promise<ChatAnswer> {
    await this.caches.answers.set(ctx, prepared.cacheKey, { body: answer });
    return answer;
  }
}

function citationsFor(passages: readonly ContextPassage[], numbers: readonly number[]): Citation[] {
  return passages
    .filter((p) => numbers.includes(p.citation))
    .map((p) => ({
      citation: p.citation,
      document_id: p.documentId,
      chunk_id: p.chunkId,
      title: p.title,
      snippet: p.text.length > 280 ? `${p.text.slice(0, 277)}...` : p.text,
    }));
}

async function* replay(answer: ChatAnswer): AsyncGenerator<ChatStreamEvent> {
  for (const piece of answer.answer.match(/\S+\s*/g) ?? []) yield { type: "token", text: piece };
  yield { type: "citations", citations: answer.citations };
  yield { type: "done", answer: withoutBody(answer) };
}

function withoutBody(answer: ChatAnswer): Omit<ChatAnswer, "answer" | "citations"> {
  const { answer: _answer, citations: _citations, ...rest } = answer;
  return rest;
}
