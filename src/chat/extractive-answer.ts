import type { ContextPassage } from "../retrieval/assemble-context.js";

const STOPWORDS = new Set(
  "a an and are as at be but by can do does for from how i if in into is it its me my of on or our so that the their them then there these this to was we what when where which who why will with you your".split(
    " ",
  ),
);

/**
 * The answer without an LLM: the passage sentences that share the most terms with the question,
 * in passage order, each followed by its citation. Nothing is generated, so nothing is invented;
 * the service stays useful offline.
 */
export function extractiveAnswer(question: string, passages: readonly ContextPassage[], maxSentences = 3): {
  text: string;
  citations: number[];
  /** No passage sentence shares a content term with the question: retrieved by meaning alone. */
  sharesNoTerm: boolean;
} {
  const terms = new Set(tokens(question));
  const scored: { sentence: string; citation: number; order: number; score: number; overlap: number }[] = [];
  passages.forEach((passage, passageIndex) => {
    splitSentences(passage.text).forEach((sentence, sentenceIndex) => {
      const words = tokens(sentence);
      const overlap = words.filter((w) => terms.has(w)).length;
      // Higher-ranked passages win ties; a sentence with no shared term still counts a little
      // when the passage was retrieved by meaning alone.
      const score = overlap + passage.similarity * 0.5 - passageIndex * 0.01;
      scored.push({ sentence, citation: passage.citation, order: passageIndex * 1000 + sentenceIndex, score, overlap });
    });
  });
  // Sentences that share a term with the question; failing that, the best one by meaning alone.
  const ranked = scored.sort((a, b) => b.score - a.score);
  // Weak matches (well below the best sentence) are noise, not support.
  const best = ranked[0]?.score ?? 0;
  const sharing = ranked.filter((s) => s.overlap > 0 && s.score >= best * 0.6);
  const chosen = (sharing.length > 0 ? sharing : ranked.slice(0, 1))
    .slice(0, maxSentences)
    .sort((a, b) => a.order - b.order);
  return {
    text: chosen.map((c) => `${c.sentence} [${c.citation}]`).join(" "),
    citations: [...new Set(chosen.map((c) => c.citation))],
    sharesNoTerm: sharing.length === 0,
  };
}

/**
 * Unicode sentence boundaries (ICU, via Intl.Segmenter): a decimal point ("2.4 GHz"), a version
 * or a number like "3.5" does not end a sentence, as it did with a split on every full stop.
 */
const SENTENCES = new Intl.Segmenter("en", { granularity: "sentence" });

function splitSentences(text: string): string[] {
  return [...SENTENCES.segment(text.replace(/\s+/g, " "))]
    .map((s) => s.segment.trim())
    .filter((s) => s.length > 2);
}

function tokens(text: string): string[] {
  return (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [])
    .filter((t) => !STOPWORDS.has(t))
    .map((t) => t.replace(/(ing|ed|es|s)$/u, ""));
}
