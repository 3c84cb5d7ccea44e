import { seededRandom } from "../stats.js";
import { generateDocuments, QUERY_TEXTS, WORDS, type GeneratedDocument } from "../text-corpus.js";

/**
 * What the tenants send. Every question is distinct (a counter is part of it), so neither the
 * per-tenant query-embedding cache nor the answer cache can absorb any of the load: each chat is
 * a query embedding, a hybrid search and one LLM call. Texts come from the shared help-centre
 * vocabulary, so searches find passages and chats reach the LLM.
 */
export class QuestionStream {
  private readonly random: () => number;
  private count = 0;

  constructor(
    private readonly label: string,
    seed: number,
  ) {
    this.random = seededRandom(seed);
  }

  next(): string {
    const pick = <T>(items: readonly T[]) => items[Math.floor(this.random() * items.length)]!;
    this.count++;
    return `${pick(QUERY_TEXTS)} for the ${pick(WORDS)} ${pick(WORDS)} (${this.label} ${this.count})`;
  }
}

/** A help article of about six chunks (the aggressor's batch, the seed corpora). */
export function articles(count: number, seed: number): GeneratedDocument[] {
  return generateDocuments(count, seed);
}

/**
 * A small upload: the title and first section of a generated article, about 1,200 characters,
 * which the default chunker cuts into two chunks.
 */
export function smallDocuments(count: number, seed: number): GeneratedDocument[] {
  return generateDocuments(count, seed).map((doc) => {
    const firstSection = doc.markdown.split("\n\n## ").slice(0, 2).join("\n\n## ");
    return { title: doc.title, markdown: firstSection };
  });
}
