import type { TokenUsage } from "./llm-client.js";

/** What a chat answers, whole or streamed: the shapes the chat service, its run steps and the HTTP layer share. */
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
