import type { StoredCase } from "./client.js";
import type { FixtureQuestion } from "./fixtures.js";
import type { EvalQuestion } from "./score.js";

/**
 * Turns both sources of questions into the scorer's one shape. Fixture questions name documents
 * by file name, resolved to the ids Fence gave the uploads; stored cases already carry ids.
 */

export function fromFixture(question: FixtureQuestion, documentIdOf: (fileName: string) => string): EvalQuestion {
  if (question.expect === "answer") {
    return {
      id: question.id,
      source: "fixture",
      question: question.question,
      expect: "answer",
      crossTenant: false,
      expectedDocumentIds: question.expected_documents.map(documentIdOf),
      mustContain: question.must_contain,
      mustNotContain: question.must_not_contain,
    };
  }
  return {
    id: question.id,
    source: "fixture",
    question: question.question,
    expect: "dont_know",
    crossTenant: question.why === "cross_tenant",
    expectedDocumentIds: [],
    mustContain: [],
    mustNotContain: question.must_not_contain,
  };
}

/**
 * A case a tenant stored from a bad answer. Its expectation is explicit when the case says so;
 * otherwise a case with no document to cite and no phrase to contain can only be satisfied by
 * "I don't know" (the tenant reported an invented answer), and any other case expects an answer.
 */
export function fromStoredCase(stored: StoredCase, index: number): EvalQuestion {
  const explicit = stored.expect ?? (stored.expect_no_answer === undefined ? undefined : stored.expect_no_answer ? "dont_know" : "answer");
  const expect = explicit ?? (stored.expected_document_ids.length === 0 && stored.must_contain.length === 0 ? "dont_know" : "answer");
  return {
    id: `case-${stored.id ?? index + 1}`,
    source: "stored_case",
    question: stored.question,
    expect,
    crossTenant: false,
    expectedDocumentIds: expect === "answer" ? stored.expected_document_ids : [],
    mustContain: expect === "answer" ? stored.must_contain : [],
    mustNotContain: stored.must_not_contain,
  };
}
