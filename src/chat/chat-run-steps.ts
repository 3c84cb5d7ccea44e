/**
 * What each step of a chat writes into its run record: ids, scores, counts and models — never
 * passage text (the question and answer are stored on the run itself, masked, by RunRecords).
 */
import type { SearchHit } from "../retrieval/hybrid-search.js";
import type { ContextPassage } from "../retrieval/assemble-context.js";
import { StreamAbandoned, type RunRecorder } from "../runs/run-recorder.js";
import type { ChatAnswer, ChatStreamEvent, Citation } from "./chat-answer.js";
import type { Completion } from "./llm-client.js";

export function describeHits(hits: readonly SearchHit[]): Record<string, unknown> {
  return {
    hits: hits.map((h) => ({ chunk_id: h.chunkId, document_id: h.documentId, score: h.score, similarity: h.similarity })),
  };
}

export function describePassages(passages: readonly ContextPassage[]): Record<string, unknown> {
  return { passages: passages.map((p) => ({ citation: p.citation, chunk_id: p.chunkId, document_id: p.documentId })) };
}

export function describeCompletion(completion: Completion): Record<string, unknown> {
  return { ...completion.usage, usage_reported: completion.usageReported, finish_reason: completion.finishReason };
}

/** The answer step, and the answer text on the run (masked when stored). */
export function recordAnswer(run: RunRecorder, answer: ChatAnswer): void {
  run.note("answer", {
    mode: answer.mode,
    cached: answer.cached,
    no_answer: answer.no_answer,
    model: answer.model,
    citations: answer.citations.map((c) => ({ citation: c.citation, document_id: c.document_id, chunk_id: c.chunk_id })),
  });
  run.set({ answer: answer.answer, ...(answer.model ? { model: answer.model } : {}) });
}

/**
 * Passes a chat stream through and records it: the answer is gathered from its tokens and
 * citations, and the run ends with the stream — done, failed, or abandoned by the client.
 */
export async function* recordStream(run: RunRecorder, events: AsyncGenerator<ChatStreamEvent>): AsyncGenerator<ChatStreamEvent> {
  let text = "";
  let citations: Citation[] = [];
  let ended: { error: unknown } | undefined;
  try {
    for await (const event of events) {
      if (event.type === "token") text += event.text;
      else if (event.type === "citations") citations = event.citations;
      else recordAnswer(run, { ...event.answer, answer: text, citations });
      yield event;
    }
    ended = { error: undefined };
  } catch (error) {
    ended = { error };
    throw error;
  } finally {
    await run.finish(ended ? ended.error : new StreamAbandoned());
  }
}
