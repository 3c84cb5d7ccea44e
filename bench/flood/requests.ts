import { QuestionStream, smallDocuments } from "../noisy/workload.js";
import type { GeneratedDocument } from "../text-corpus.js";
import type { Operation } from "./shapes.js";

/** One HTTP request as undici sends it. */
export interface Call {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** Distinct small documents the factory cycles through (each upload still differs: see `upload`). */
const DOCUMENT_POOL = 64;

/**
 * The requests of the victim and of the aggressor. Every question and every upload is distinct (a
 * label and a counter are part of it), so neither the query-embedding cache, nor the answer cache,
 * nor a content hash absorbs any of the load: each search embeds its query, each chat runs
 * retrieval and answers, each upload is parsed, chunked, embedded and stored.
 */
export class RequestFactory {
  private readonly questions: QuestionStream;
  private readonly documents: GeneratedDocument[];
  private uploads = 0;

  constructor(
    private readonly label: string,
    seed: number,
  ) {
    this.questions = new QuestionStream(label, seed);
    this.documents = smallDocuments(DOCUMENT_POOL, seed + 1);
  }

  make(op: Operation, key: string): Call {
    const auth = { authorization: `Bearer ${key}` };
    const json = { ...auth, "content-type": "application/json" };
    switch (op) {
      case "bare":
        return { method: "GET", path: "/", headers: {} };
      case "search":
        return { method: "POST", path: "/v1/search", headers: json, body: JSON.stringify({ query: this.questions.next(), k: 8 }) };
      case "chat":
        return { method: "POST", path: "/v1/chat", headers: json, body: JSON.stringify({ question: this.questions.next() }) };
      case "upload":
        return { method: "POST", path: "/v1/documents", headers: json, body: this.upload() };
      case "queued-upload":
        // RFC 7240: Fence answers 202 with a job instead of ingesting in the request.
        return { method: "POST", path: "/v1/documents", headers: { ...json, prefer: "respond-async" }, body: this.upload() };
    }
  }

  /** A small document (~200 words, two chunks) made unique by a closing line. */
  private upload(): string {
    const n = this.uploads++;
    const doc = this.documents[n % this.documents.length]!;
    return JSON.stringify({ title: `${doc.title} (${this.label} ${n})`, text: `${doc.markdown}\n\nReference ${this.label} ${n}.` });
  }
}

/** A few documents for a tenant's corpus before its phase (synchronous uploads). */
export function seedDocuments(count: number, seed: number): { title: string; text: string }[] {
  return smallDocuments(count, seed).map((d) => ({ title: d.title, text: d.markdown }));
}
