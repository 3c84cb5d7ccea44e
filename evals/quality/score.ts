/**
 * The quality eval's scorer: pure functions from (question, observed answer) to an outcome, and
 * from outcomes to a tenant's figures. No I/O, so every rule is unit-tested with hand-made answers
 * (test/unit/evals/quality-score.test.ts).
 *
 * The metrics, each a share in [0, 1] (null when nothing it measures was asked):
 *
 * - retrieval hit rate: of the questions with expected documents, the share whose answer cites at
 *   least one of them. A don't-know answer cites nothing, so it is a miss.
 * - citation precision: over those same questions, cited documents that are expected / all cited
 *   documents (distinct documents per answer, pooled over the questions). Questions that must get
 *   a don't-know are left out: their wrong citations are already counted by don't-know correctness.
 * - don't-know correctness: over every question, the share where the answer is Fence's don't-know
 *   exactly when the question expects one.
 * - phrase pass rate: over the questions with phrases, the share whose answer contains every
 *   `must_contain` and no `must_not_contain` phrase (case-insensitive, whitespace collapsed).
 */

/** Fence's don't-know answer (src/chat/chat-service.ts `NO_ANSWER`), matched by its opening words. */
export const DONT_KNOW_PREFIX = "i don't know based on your documents";

export interface EvalQuestion {
  id: string;
  /** Where the question came from: the repository's fixtures, or a case the tenant stored itself. */
  source: "fixture" | "stored_case";
  question: string;
  expect: "answer" | "dont_know";
  /** Answerable from another tenant's documents only: a don't-know here is the cross-tenant check. */
  crossTenant: boolean;
  /** Fence document ids; an answer must cite at least one. Empty: no retrieval expectation. */
  expectedDocumentIds: string[];
  mustContain: string[];
  mustNotContain: string[];
}

/** What the eval saw in Fence's chat response. */
export interface ObservedAnswer {
  answer: string;
  noAnswer: boolean;
  citedDocumentIds: string[];
  requestId?: string | undefined;
}

export interface QuestionOutcome {
  id: string;
  source: EvalQuestion["source"];
  expect: EvalQuestion["expect"];
  crossTenant: boolean;
  saidDontKnow: boolean;
  dontKnowCorrect: boolean;
  /** null when the question has no expected documents (or expects a don't-know). */
  hit: boolean | null;
  /** Distinct cited documents, and how many of them were expected (answerable questions only). */
  cited: number;
  citedExpected: number;
  /** null when the question has no phrases. */
  phrasesPassed: boolean | null;
  /** Why it lost points, in words that carry no answer text (safe to print for real tenants). */
  problems: string[];
  /** The cited document ids not expected, for the report to name. */
  unexpectedCitations: string[];
  requestId: string | undefined;
}

export interface Ratio {
  numerator: number;
  denominator: number;
  /** numerator / denominator, or null when the denominator is 0. */
  value: number | null;
}

export interface TenantFigures {
  questions: number;
  retrievalHitRate: Ratio;
  citationPrecision: Ratio;
  dontKnowCorrectness: Ratio;
  phrasePassRate: Ratio;
}

export const METRICS = ["retrievalHitRate", "citationPrecision", "dontKnowCorrectness", "phrasePassRate"] as const;
export type MetricName = (typeof METRICS)[number];

export const METRIC_LABELS: Record<MetricName, string> = {
  retrievalHitRate: "retrieval hit rate",
  citationPrecision: "citation precision",
  dontKnowCorrectness: "don't-know correctness",
  phrasePassRate: "phrase pass rate",
};

/** How phrases and answers are compared: case-insensitive, whitespace collapsed. */
export function normalize(text: string): string {
  return text.toLowerCase().replace(/\s+/g, " ").trim();
}

/** Fence flags its don't-know answer; an LLM target may also write it out without the flag. */
export function isDontKnow(answer: Pick<ObservedAnswer, "answer" | "noAnswer">): boolean {
  return answer.noAnswer || normalize(answer.answer).startsWith(DONT_KNOW_PREFIX);
}

export function scoreAnswer(question: EvalQuestion, observed: ObservedAnswer): QuestionOutcome {
  const problems: string[] = [];
  const saidDontKnow = isDontKnow(observed);
  const dontKnowCorrect = saidDontKnow === (question.expect === "dont_know");
  if (!dontKnowCorrect) problems.push(saidDontKnow ? "answered don't-know, but the documents answer it" : "answered, but should have said don't-know");

  const cited = [...new Set(observed.citedDocumentIds)];
  const expected = new Set(question.expectedDocumentIds);
  const measuresRetrieval = question.expect === "answer" && expected.size > 0;
  const citedExpected = measuresRetrieval ? cited.filter((id) => expected.has(id)).length : 0;
  const unexpectedCitations = measuresRetrieval ? cited.filter((id) => !expected.has(id)) : [];
  const hit = measuresRetrieval ? citedExpected > 0 : null;
  if (hit === false && !saidDontKnow) problems.push("no expected document cited");
  if (unexpectedCitations.length > 0) problems.push(`${unexpectedCitations.length} unexpected document(s) cited`);

  const text = normalize(observed.answer);
  const missing = question.mustContain.filter((p) => !text.includes(normalize(p)));
  const forbidden = question.mustNotContain.filter((p) => text.includes(normalize(p)));
  const hasPhrases = question.mustContain.length + question.mustNotContain.length > 0;
  const phrasesPassed = hasPhrases ? missing.length === 0 && forbidden.length === 0 : null;
  // A fixture's phrases are the repository's own text and are named; a stored case's phrases are a
  // tenant's assertions about its documents, so only counted (the report may end up in a CI log).
  const name = (phrases: string[], kind: string) =>
    question.source === "fixture" ? phrases.map((p) => JSON.stringify(p)).join(", ") : `${phrases.length} ${kind} phrase(s)`;
  if (missing.length > 0) problems.push(`missing ${name(missing, "required")}`);
  if (forbidden.length > 0) problems.push(`contains ${question.source === "fixture" ? "forbidden " : ""}${name(forbidden, "forbidden")}`);

  return {
    id: question.id,
    source: question.source,
    expect: question.expect,
    crossTenant: question.crossTenant,
    saidDontKnow,
    dontKnowCorrect,
    hit,
    cited: measuresRetrieval ? cited.length : 0,
    citedExpected,
    phrasesPassed,
    problems,
    unexpectedCitations,
    requestId: observed.requestId,
  };
}

export function ratio(numerator: number, denominator: number): Ratio {
  return { numerator, denominator, value: denominator === 0 ? null : numerator / denominator };
}

/** A tenant's figures from its outcomes; the same function pools every tenant's for "overall". */
export function aggregate(outcomes: readonly QuestionOutcome[]): TenantFigures {
  const retrieval = outcomes.filter((o) => o.hit !== null);
  const phrased = outcomes.filter((o) => o.phrasesPassed !== null);
  return {
    questions: outcomes.length,
    retrievalHitRate: ratio(retrieval.filter((o) => o.hit).length, retrieval.length),
    citationPrecision: ratio(
      retrieval.reduce((n, o) => n + o.citedExpected, 0),
      retrieval.reduce((n, o) => n + o.cited, 0),
    ),
    dontKnowCorrectness: ratio(outcomes.filter((o) => o.dontKnowCorrect).length, outcomes.length),
    phrasePassRate: ratio(phrased.filter((o) => o.phrasesPassed).length, phrased.length),
  };
}
