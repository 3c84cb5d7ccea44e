import type { Database } from "../db/database.js";
import type { TenantCaches, CacheKeyParts } from "../cache/tenant-caches.js";
import { FeatureDisabledError } from "../errors.js";
import type { BudgetGuard, Hold } from "../limits/budget-guard.js";
import { estimateTokens } from "../metering/usage-event.js";
import type { SecurityEvents } from "../observability/security-events.js";
import { featureEnabled, readTenantSettings, type TenantSettings } from "../plans/tenant-settings.js";
import { assembleContext, type ContextPassage } from "../retrieval/assemble-context.js";
import type { Retriever } from "../retrieval/retriever.js";
import { readDataVersion } from "../tenancy/data-version.js";
import type { TenantContext } from "../tenancy/tenant-context.js";
import { extractiveAnswer } from "./extractive-answer.js";
import type { Completion, LlmClient, TokenUsage } from "./llm-client.js";
import { MeteredCall } from "./metered-call.js";
import { buildGroundedPrompt, citedNumbers, PROMPT_VERSION, type ConversationTurn, type PromptMessage } from "./prompt.js";

export const NO_ANSWER = "I don't know based on your documents.";

export interface Citation {
  citation: number;
  document_id: string;
  chunk_id: string;
  title: string;
  snippet: string;
}

export interface ChatAnswer {
  answer: string;
  citations: Citation[];
  mode: "llm" | "extractive";
  no_answer: boolean;
  model: string | null;
  model_downgraded: boolean;
  prompt_version: string;
  usage: TokenUsage;
  cached: boolean;
}

export type ChatStreamEvent =
  | { type: "token"; text: string }
  | { type: "citations"; citations: Citation[] }
  | { type: "done"; answer: Omit<ChatAnswer, "answer" | "citations"> };

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
  ) {}

  async answer(ctx: TenantContext, turns: ConversationTurn[], meta: ChatRequestMeta): Promise<ChatAnswer> {
    const prepared = await this.prepare(ctx, turns);
    if (prepared.cachedAnswer) return prepared.cachedAnswer;
    if (prepared.passages.length === 0) return this.noAnswer(prepared);
    if (!prepared.useLlm) return this.cache(ctx, prepared, this.extractive(turns, prepared));

    const call = await this.startCall(ctx, turns, prepared, meta);
    const completion = await call.run((messages, options) => this.llm!.complete(messages, options));
    return this.cache(ctx, prepared, this.fromCompletion(completion, prepared, call.hold));
  }

  /**
   * The same answer as a stream of events: tokens as they arrive, then citations, then done.
   * Retrieval, the ownership assertion and the budget check run before this resolves, so their
   * failures are ordinary HTTP errors; only the LLM's own failures can arrive mid-stream.
   */
  async openStream(ctx: TenantContext, turns: ConversationTurn[], meta: ChatRequestMeta): Promise<AsyncGenerator<ChatStreamEvent>> {
    const prepared = await this.prepare(ctx, turns);
    if (!featureEnabled(prepared.settings, "chat.streaming")) throw new FeatureDisabledError("chat.streaming");
    if (prepared.cachedAnswer || prepared.passages.length === 0 || !prepared.useLlm) {
      const whole =
        prepared.cachedAnswer ??
        (prepared.passages.length === 0 ? this.noAnswer(prepared) : await this.cache(ctx, prepared, this.extractive(turns, prepared)));
      return replay(whole);
    }
    const call = await this.startCall(ctx, turns, prepared, meta);
    return this.streamLlm(ctx, prepared, call);
  }

  private async *streamLlm(ctx: TenantContext, prepared: Prepared, call: MeteredCall): AsyncGenerator<ChatStreamEvent> {
    const completion = yield* call.stream((messages, options) => this.llm!.stream(messages, options));
    const result = await this.cache(ctx, prepared, this.fromCompletion(completion, prepared, call.hold));
    yield { type: "citations", citations: result.citations };
    yield { type: "done", answer: withoutBody(result) };
  }

  private async prepare(ctx: TenantContext, turns: ConversationTurn[]): Promise<Prepared> {
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
    if (cached) return { settings, passages: [], cacheKey, useLlm, cachedAnswer: { ...(cached.body as ChatAnswer), cached: true } };
    const hits = await this.retriever.search(ctx, question, settings.overrides.retrieval_k ?? this.options.k);
    const passages = assembleContext(ctx, hits, this.securityEvents, {
      minRelevance: this.options.minRelevance,
      maxPassages: this.options.maxPassages,
      maxChars: this.options.maxContextChars,
      skipAssertion: this.db.mutations.disableAssemblyAssertion === true,
    });
    return { settings, passages, cacheKey, cachedAnswer: undefined, useLlm };
  }

  /** Builds the prompt and reserves its budget (402 here, before any provider call). */
  private async startCall(ctx: TenantContext, turns: ConversationTurn[], prepared: Prepared, meta: ChatRequestMeta): Promise<MeteredCall> {
    const overrides = prepared.settings.overrides;
    const messages: PromptMessage[] = buildGroundedPrompt(prepared.passages, turns, {
      persona: overrides.persona,
      answerStyle: overrides.answer_style,
    });
    const inputTokens = estimateTokens(messages.map((m) => m.content).join("\n"));
    const hold = await this.budgets.reserve(ctx, {
      feature: "chat",
      provider: this.options.provider,
      operationId: meta.operationId,
      preferredModel: prepared.settings.plan.preferredModel ?? this.llm!.model,
      fallbackModel: prepared.settings.plan.fallbackModel ?? this.options.fallbackModel,
      inputTokens,
      maxOutputTokens: this.options.maxOutputTokens,
    });
    return new MeteredCall(ctx, this.budgets, hold, {
      messages,
      eventId: `${meta.operationId}:chat`,
      provider: this.options.provider,
      inputEstimate: inputTokens,
      maxTokens: this.options.maxOutputTokens,
      signal: meta.signal,
    });
  }

  private extractive(turns: ConversationTurn[], prepared: Prepared): ChatAnswer {
    const extracted = extractiveAnswer(turns[turns.length - 1]!.content, prepared.passages);
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
