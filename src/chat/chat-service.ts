import type { Database } from "../db/database.js";
import type { TenantCaches, CacheKeyParts } from "../cache/tenant-caches.js";
import type { SecurityEvents } from "../observability/security-events.js";
import { assembleContext, type ContextPassage } from "../retrieval/assemble-context.js";
import type { Retriever } from "../retrieval/retriever.js";
import { readDataVersion } from "../tenancy/data-version.js";
import type { TenantContext } from "../tenancy/tenant-context.js";
import { extractiveAnswer } from "./extractive-answer.js";
import type { LlmClient, TokenUsage } from "./llm-client.js";
import { buildGroundedPrompt, citedNumbers, PROMPT_VERSION, type ConversationTurn } from "./prompt.js";

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
}

const ZERO_USAGE: TokenUsage = { input_tokens: 0, output_tokens: 0, total_tokens: 0 };

interface Prepared {
  passages: ContextPassage[];
  cacheKey: CacheKeyParts;
  cachedAnswer: ChatAnswer | undefined;
}

/**
 * Grounded answers. Retrieval and the ownership assertion happen first, inside the tenant's
 * transactions; the LLM is called after they have closed. Answers are cached per tenant, per
 * model and per data version (I5), so any document change makes old answers unreachable.
 */
export class ChatService {
  constructor(
    private readonly db: Database,
    private readonly retriever: Retriever,
    private readonly caches: TenantCaches,
    private readonly securityEvents: SecurityEvents,
    private readonly llm: LlmClient | undefined,
    private readonly options: ChatOptions,
  ) {}

  get mode(): "llm" | "extractive" {
    return this.llm ? "llm" : "extractive";
  }

  async answer(ctx: TenantContext, turns: ConversationTurn[]): Promise<ChatAnswer> {
    return this.answerPrepared(ctx, turns, await this.prepare(ctx, turns));
  }

  private async answerPrepared(ctx: TenantContext, turns: ConversationTurn[], prepared: Prepared): Promise<ChatAnswer> {
    if (prepared.cachedAnswer) return prepared.cachedAnswer;
    const { passages } = prepared;
    let result: ChatAnswer;
    if (passages.length === 0) {
      result = this.noAnswer();
    } else if (this.llm) {
      const completion = await this.llm.complete(buildGroundedPrompt(passages, turns));
      result = this.fromLlmText(completion.text, passages, completion.usage);
    } else {
      const question = turns[turns.length - 1]!.content;
      const extracted = extractiveAnswer(question, passages);
      result = this.build(extracted.text, citationsFor(passages, extracted.citations), false, ZERO_USAGE);
    }
    this.caches.answers.set(ctx, prepared.cacheKey, { body: result });
    return result;
  }

  /**
   * The same answer as a stream of events: tokens as they arrive, then citations, then done.
   * Retrieval and the ownership assertion run before this resolves, so their failures are
   * ordinary HTTP errors; only the LLM's own failures can arrive mid-stream.
   */
  async openStream(ctx: TenantContext, turns: ConversationTurn[], signal?: AbortSignal): Promise<AsyncGenerator<ChatStreamEvent>> {
    const prepared = await this.prepare(ctx, turns);
    return this.streamPrepared(ctx, turns, prepared, signal);
  }

  private async *streamPrepared(
    ctx: TenantContext,
    turns: ConversationTurn[],
    prepared: Prepared,
    signal?: AbortSignal,
  ): AsyncGenerator<ChatStreamEvent> {
    if (prepared.cachedAnswer || prepared.passages.length === 0 || !this.llm) {
      const whole = await this.answerPrepared(ctx, turns, prepared);
      yield* wordsOf(whole.answer);
      yield { type: "citations", citations: whole.citations };
      yield { type: "done", answer: withoutBody(whole) };
      return;
    }
    const generator = this.llm.stream(buildGroundedPrompt(prepared.passages, turns), signal);
    let step = await generator.next();
    while (!step.done) {
      yield { type: "token", text: step.value };
      step = await generator.next();
    }
    const result = this.fromLlmText(step.value.text, prepared.passages, step.value.usage);
    this.caches.answers.set(ctx, prepared.cacheKey, { body: result });
    yield { type: "citations", citations: result.citations };
    yield { type: "done", answer: withoutBody(result) };
  }

  private async prepare(ctx: TenantContext, turns: ConversationTurn[]): Promise<Prepared> {
    const question = turns[turns.length - 1]!.content;
    const dataVersion = await this.db.withTenant(ctx, readDataVersion);
    const cacheKey: CacheKeyParts = {
      model: `${this.llm?.model ?? "extractive"}|${this.retriever.model}|${PROMPT_VERSION}`,
      dataVersion,
      input: JSON.stringify(turns),
    };
    const cached = this.caches.answers.get(ctx, cacheKey);
    if (cached) return { passages: [], cacheKey, cachedAnswer: { ...(cached.body as ChatAnswer), cached: true } };
    const hits = await this.retriever.search(ctx, question, this.options.k);
    const passages = assembleContext(ctx, hits, this.securityEvents, {
      minRelevance: this.options.minRelevance,
      maxPassages: this.options.maxPassages,
      maxChars: this.options.maxContextChars,
      skipAssertion: this.db.mutations.disableAssemblyAssertion === true,
    });
    return { passages, cacheKey, cachedAnswer: undefined };
  }

  private fromLlmText(text: string, passages: ContextPassage[], usage: TokenUsage): ChatAnswer {
    const trimmed = text.trim();
    if (!trimmed || trimmed.startsWith(NO_ANSWER.slice(0, 20))) return { ...this.noAnswer(), usage };
    const cited = citedNumbers(trimmed).filter((n) => n >= 1 && n <= passages.length);
    const citations = citationsFor(passages, cited.length > 0 ? cited : passages.map((p) => p.citation));
    return this.build(trimmed, citations, false, usage);
  }

  private noAnswer(): ChatAnswer {
    return this.build(NO_ANSWER, [], true, ZERO_USAGE);
  }

  private build(answer: string, citations: Citation[], noAnswer: boolean, usage: TokenUsage): ChatAnswer {
    return {
      answer,
      citations,
      mode: this.mode,
      no_answer: noAnswer,
      model: this.llm?.model ?? null,
      prompt_version: PROMPT_VERSION,
      usage,
      cached: false,
    };
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

function* wordsOf(text: string): Generator<ChatStreamEvent> {
  for (const piece of text.match(/\S+\s*/g) ?? []) yield { type: "token", text: piece };
}

function withoutBody(answer: ChatAnswer): Omit<ChatAnswer, "answer" | "citations"> {
  const { answer: _answer, citations: _citations, ...rest } = answer;
  return rest;
}
