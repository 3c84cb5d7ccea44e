import { describe, expect, it } from "vitest";
import { checkAgainstBaseline, diffBaselines, toBaseline, type BaselineFile } from "../../../evals/quality/baseline.js";
import { fromStoredCase } from "../../../evals/quality/questions.js";
import { aggregate, isDontKnow, scoreAnswer, type EvalQuestion, type ObservedAnswer, type TenantFigures } from "../../../evals/quality/score.js";
import { NO_ANSWER } from "../../../src/chat/chat-service.js";

/**
 * The quality eval's scorer and gate with hand-made answers: every figure below is worked out by
 * hand, so a change in how hit rate, citation precision, don't-know or phrases are counted fails here.
 */

const LEAVE = "doc-leave";
const PARENTAL = "doc-parental";
const TRAVEL = "doc-travel";

const answerable: EvalQuestion = {
  id: "leave-days",
  source: "fixture",
  question: "How many days of annual leave do I get?",
  expect: "answer",
  crossTenant: false,
  expectedDocumentIds: [LEAVE],
  mustContain: ["25 days"],
  mustNotContain: ["20 weeks"],
};

const unanswerable: EvalQuestion = {
  id: "thermostat-warranty",
  source: "fixture",
  question: "How long is the thermostat warranty?",
  expect: "dont_know",
  crossTenant: true,
  expectedDocumentIds: [],
  mustContain: [],
  mustNotContain: ["2-year"],
};

const answer = (text: string, cited: string[], noAnswer = false): ObservedAnswer => ({ answer: text, noAnswer, citedDocumentIds: cited });
const dontKnow = answer(NO_ANSWER, [], true);

describe("quality scorer: one answer", () => {
  it("gives a right answer every point", () => {
    const o = scoreAnswer(answerable, answer("Full-time employees receive 25  Days of paid leave. [1]", [LEAVE, LEAVE]));
    expect(o).toMatchObject({ saidDontKnow: false, dontKnowCorrect: true, hit: true, cited: 1, citedExpected: 1, phrasesPassed: true, problems: [] });
  });

  it("takes points from a wrong answer for each thing it got wrong, and names them", () => {
    const o = scoreAnswer(answerable, answer("The birth parent receives 20 weeks of leave. [1]", [PARENTAL]));
    expect(o).toMatchObject({ dontKnowCorrect: true, hit: false, cited: 1, citedExpected: 0, phrasesPassed: false, unexpectedCitations: [PARENTAL] });
    expect(o.problems).toEqual(["no expected document cited", "1 unexpected document(s) cited", 'missing "25 days"', 'contains forbidden "20 weeks"']);
  });

  it("counts a hit when one expected document is cited, and the extra citation against precision", () => {
    const o = scoreAnswer(answerable, answer("You get 25 days. [1] Hotels cost €160. [2]", [LEAVE, TRAVEL]));
    expect(o).toMatchObject({ hit: true, cited: 2, citedExpected: 1, phrasesPassed: true, unexpectedCitations: [TRAVEL] });
  });

  it("names a fixture's phrases in its problems, but only counts a tenant's stored-case phrases", () => {
    const stored: EvalQuestion = { ...answerable, source: "stored_case" };
    expect(scoreAnswer(stored, answer("You get 20 weeks. [1]", [LEAVE])).problems).toEqual(["missing 1 required phrase(s)", "contains 1 forbidden phrase(s)"]);
  });

  it("scores a don't-know to an answerable question as a miss on every metric", () => {
    const o = scoreAnswer(answerable, dontKnow);
    expect(o).toMatchObject({ saidDontKnow: true, dontKnowCorrect: false, hit: false, cited: 0, phrasesPassed: false });
    expect(o.problems[0]).toBe("answered don't-know, but the documents answer it");
  });

  it("accepts Fence's don't-know for a question the documents cannot answer", () => {
    const o = scoreAnswer(unanswerable, dontKnow);
    expect(o).toMatchObject({ saidDontKnow: true, dontKnowCorrect: true, hit: null, cited: 0, phrasesPassed: true, problems: [] });
  });

  it("fails an invented answer to an unanswerable question, without counting its citations in precision", () => {
    const o = scoreAnswer(unanswerable, answer("The T3 has a 2-year warranty. [1]", [TRAVEL]));
    expect(o).toMatchObject({ saidDontKnow: false, dontKnowCorrect: false, hit: null, cited: 0, citedExpected: 0, phrasesPassed: false });
    expect(o.problems).toEqual(["answered, but should have said don't-know", 'contains forbidden "2-year"']);
  });
});

describe("quality scorer: don't-know classification", () => {
  it("recognises Fence's flag, and the sentence written out without it (an LLM target)", () => {
    expect(isDontKnow({ answer: "anything", noAnswer: true })).toBe(true);
    expect(isDontKnow({ answer: NO_ANSWER, noAnswer: false })).toBe(true);
    expect(isDontKnow({ answer: `  ${NO_ANSWER.toUpperCase()} `, noAnswer: false })).toBe(true);
  });

  it("does not take a hedged answer, or the phrase quoted mid-answer, for a don't-know", () => {
    expect(isDontKnow({ answer: "I don't know the exact date, but leave is 25 days. [1]", noAnswer: false })).toBe(false);
    expect(isDontKnow({ answer: `Refunds take 5 days. ${NO_ANSWER}`, noAnswer: false })).toBe(false);
  });
});

describe("quality scorer: a tenant's figures", () => {
  const right = scoreAnswer(answerable, answer("You get 25 days. [1]", [LEAVE]));
  const wrong = scoreAnswer(answerable, answer("You get 20 weeks. [1] Hotels cost €160. [2]", [PARENTAL, TRAVEL]));
  const mixed = scoreAnswer(answerable, answer("You get 25 days. [1] Hotels cost €160. [2]", [LEAVE, TRAVEL]));
  const declined = scoreAnswer(unanswerable, dontKnow);
  const invented = scoreAnswer(unanswerable, answer("A 2-year warranty. [1]", [TRAVEL]));

  it("pools the counts exactly", () => {
    const f = aggregate([right, wrong, mixed, declined, invented]);
    expect(f.questions).toBe(5);
    expect(f.retrievalHitRate).toEqual({ numerator: 2, denominator: 3, value: 2 / 3 });
    // right: 1 of 1 cited expected; wrong: 0 of 2; mixed: 1 of 2; the unanswerable ones are not counted.
    expect(f.citationPrecision).toEqual({ numerator: 2, denominator: 5, value: 0.4 });
    expect(f.dontKnowCorrectness).toEqual({ numerator: 4, denominator: 5, value: 0.8 });
    expect(f.phrasePassRate).toEqual({ numerator: 3, denominator: 5, value: 0.6 });
  });

  it("scores a tenant with wrong answers lower than one with right answers, on every metric", () => {
    const good = aggregate([right, declined, scoreAnswer(answerable, answer("25 days. [1]", [LEAVE]))]);
    const bad = aggregate([wrong, invented, scoreAnswer(answerable, dontKnow)]);
    expect([good.retrievalHitRate, good.citationPrecision, good.dontKnowCorrectness, good.phrasePassRate].map((r) => r.value)).toEqual([1, 1, 1, 1]);
    // wrong: answered (right to answer) from the wrong documents; invented: should have declined;
    // the last declined a question its documents answer.
    expect([bad.retrievalHitRate, bad.citationPrecision, bad.dontKnowCorrectness, bad.phrasePassRate].map((r) => r.value)).toEqual([0, 0, 1 / 3, 0]);
  });

  it("reports null, not zero or one, for a metric nothing measured", () => {
    const f = aggregate([declined]);
    expect(f.retrievalHitRate.value).toBeNull();
    expect(f.citationPrecision.value).toBeNull();
    expect(aggregate([scoreAnswer(answerable, dontKnow)]).citationPrecision).toEqual({ numerator: 0, denominator: 0, value: null });
  });
});

describe("quality scorer: stored cases", () => {
  it("expects an answer when the case names documents or phrases, and a don't-know when it names neither", () => {
    const base = { question: "q?", expected_document_ids: [], must_contain: [], must_not_contain: [] };
    expect(fromStoredCase({ ...base, id: "c1", expected_document_ids: [LEAVE] }, 0)).toMatchObject({ id: "case-c1", expect: "answer", expectedDocumentIds: [LEAVE], source: "stored_case" });
    expect(fromStoredCase({ ...base, must_contain: ["25 days"] }, 4)).toMatchObject({ id: "case-5", expect: "answer", expectedDocumentIds: [] });
    expect(fromStoredCase({ ...base, must_not_contain: ["2-year"] }, 0)).toMatchObject({ expect: "dont_know", mustNotContain: ["2-year"] });
    expect(fromStoredCase({ ...base, expected_document_ids: [LEAVE], expect_no_answer: true }, 0)).toMatchObject({ expect: "dont_know", expectedDocumentIds: [] });
  });
});

describe("quality baseline gate", () => {
  const figures = (overrides: Partial<Record<"hit" | "precision" | "dk" | "phrases", [number, number]>> = {}): TenantFigures => {
    const r = ([n, d]: [number, number]) => ({ numerator: n, denominator: d, value: d === 0 ? null : n / d });
    return {
      questions: 15,
      retrievalHitRate: r(overrides.hit ?? [10, 10]),
      citationPrecision: r(overrides.precision ?? [10, 11]),
      dontKnowCorrectness: r(overrides.dk ?? [13, 15]),
      phrasePassRate: r(overrides.phrases ?? [11, 12]),
    };
  };
  const run = (tenants: Record<string, TenantFigures>, answerMode = "extractive") => ({
    answerMode,
    embeddingModel: "local:use-lite-512",
    tenants: new Map(Object.entries(tenants)),
  });
  const baseline: BaselineFile = toBaseline("extractive", "local:use-lite-512", new Map([["hr", figures()], ["clinic", figures()]]));

  it("stores rates at 4 decimals, and passes the same figures again (13/15 is not below 0.8667)", () => {
    expect(baseline.tenants.hr).toEqual({ questions: 15, retrieval_hit_rate: 1, citation_precision: 0.9091, dont_know_correctness: 0.8667, phrase_pass_rate: 0.9167 });
    expect(checkAgainstBaseline(baseline, run({ hr: figures(), clinic: figures() }))).toEqual({ passed: true, regressions: [], notes: [] });
  });

  it("fails the one tenant that dropped, on the one metric, while the pooled figures would still look fine", () => {
    const gate = checkAgainstBaseline(baseline, run({ hr: figures({ dk: [12, 15] }), clinic: figures({ dk: [15, 15] }) }));
    expect(gate.passed).toBe(false);
    expect(gate.regressions).toEqual([
      { tenant: "hr", metric: "dontKnowCorrectness", baseline: 0.8667, current: 0.8, message: "don't-know correctness 0.8 < baseline 0.8667" },
    ]);
  });

  it("fails a metric that has nothing to measure any more, a tenant with no baseline, and a missing baseline file", () => {
    const gate = checkAgainstBaseline(baseline, run({ hr: figures({ precision: [0, 0] }), clinic: figures(), manual: figures() }));
    expect(gate.regressions.map((r) => [r.tenant, r.metric])).toEqual([
      ["hr", "citationPrecision"],
      ["manual", undefined],
    ]);
    expect(checkAgainstBaseline(undefined, run({ hr: figures() })).passed).toBe(false);
  });

  it("refuses to compare against a baseline recorded with another answer mode", () => {
    const gate = checkAgainstBaseline(baseline, run({ hr: figures(), clinic: figures() }, "llm:gpt-test"));
    expect(gate.passed).toBe(false);
    expect(gate.regressions[0]!.message).toMatch(/not comparable/);
  });

  it("notes, without failing, a changed question count and a baseline tenant that was not run", () => {
    const gate = checkAgainstBaseline(baseline, run({ hr: { ...figures(), questions: 16 } }));
    expect(gate.passed).toBe(true);
    expect(gate.notes).toEqual([expect.stringMatching(/^hr: 16 questions now, 15/), "clinic: in the baseline but not run"]);
  });

  it("prints the update as a diff that marks what went down", () => {
    const next = toBaseline("extractive", "local:use-lite-512", new Map([["hr", figures({ dk: [12, 15] })], ["manual", figures()]]));
    expect(diffBaselines(baseline, next)).toEqual(["- clinic (removed)", "  hr dont_know_correctness: 0.8667 → 0.8  (lower)", "+ manual (new)"]);
    expect(diffBaselines(next, next)).toEqual(["(no change)"]);
  });
});
