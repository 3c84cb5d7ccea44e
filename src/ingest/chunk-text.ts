import { atxHeadingOf, capAtWord, sentencesOf } from "./text-scan.js";

/**
 * Splits a document into retrieval chunks that respect its structure: Markdown headings start a
 * new section, paragraphs are packed together up to `maxChars`, and a paragraph that is too long
 * is split at sentence boundaries (then at word boundaries for a run-on "sentence"). Consecutive
 * chunks of one section share `overlapChars` of trailing text, so an answer that straddles a
 * boundary is still found. Each chunk keeps the heading of its section for context and search.
 */
export interface TextChunk {
  position: number;
  heading: string | null;
  text: string;
}

export interface ChunkOptions {
  maxChars: number;
  overlapChars: number;
}

export const DEFAULT_CHUNK_OPTIONS: ChunkOptions = { maxChars: 900, overlapChars: 150 };

/**
 * A heading is prepended to the embedding input of every chunk of its section, so an uncapped
 * one multiplies a document's embedding cost (a 100 KB heading over a one-line paragraph took a
 * model thread for most of a minute). Longer headings are cut, at a word where possible.
 */
export const MAX_HEADING_CHARS = 200;

interface Section {
  heading: string | null;
  paragraphs: string[];
}

/** The most characters `embeddingInputOf` returns for a chunk made with `options`. */
export function maxEmbeddingInputChars(options: ChunkOptions = DEFAULT_CHUNK_OPTIONS): number {
  return options.maxChars + MAX_HEADING_CHARS + 1;
}

/**
 * What is embedded for a chunk: its section heading (for context) above its text. Bounded by
 * `maxEmbeddingInputChars` whatever the chunk holds, so embedding cost follows document size.
 */
export function embeddingInputOf(chunk: Pick<TextChunk, "heading" | "text">, options: ChunkOptions = DEFAULT_CHUNK_OPTIONS): string {
  const text = chunk.text.length > options.maxChars ? chunk.text.slice(0, options.maxChars) : chunk.text;
  return chunk.heading ? `${capAtWord(chunk.heading, MAX_HEADING_CHARS)}\n${text}` : text;
}

export function chunkText(text: string, options: ChunkOptions = DEFAULT_CHUNK_OPTIONS): TextChunk[] {
  if (options.overlapChars >= options.maxChars) throw new RangeError("overlapChars must be < maxChars");
  const chunks: TextChunk[] = [];
  for (const section of splitSections(text)) {
    for (const body of packSection(section.paragraphs, options)) {
      chunks.push({ position: chunks.length, heading: section.heading, text: body });
    }
  }
  return chunks;
}

function splitSections(text: string): Section[] {
  const sections: Section[] = [];
  let current: Section = { heading: null, paragraphs: [] };
  let paragraph: string[] = [];
  const flushParagraph = () => {
    const joined = paragraph.join("\n").trim();
    if (joined) current.paragraphs.push(joined);
    paragraph = [];
  };
  for (const line of text.split("\n")) {
    // Hand-parsed: the former heading regex backtracked polynomially on `# a`, spaces, `x`.
    const heading = atxHeadingOf(line);
    if (heading !== undefined) {
      flushParagraph();
      if (current.paragraphs.length > 0) sections.push(current);
      current = { heading: heading === "" ? null : capAtWord(heading, MAX_HEADING_CHARS), paragraphs: [] };
    } else if (line.trim() === "") {
      flushParagraph();
    } else {
      paragraph.push(line);
    }
  }
  flushParagraph();
  if (current.paragraphs.length > 0) sections.push(current);
  return sections;
}

function packSection(paragraphs: string[], options: ChunkOptions): string[] {
  const pieces = paragraphs.flatMap((p) => (p.length <= options.maxChars ? [p] : splitLong(p, options.maxChars)));
  const out: string[] = [];
  let current = "";
  for (const piece of pieces) {
    const candidate = current ? `${current}\n\n${piece}` : piece;
    if (candidate.length <= options.maxChars || !current) {
      current = candidate;
      continue;
    }
    out.push(current);
    const overlap = tail(current, options.overlapChars);
    current = overlap && overlap.length + piece.length + 1 <= options.maxChars ? `${overlap} ${piece}` : piece;
  }
  if (current) out.push(current);
  return out;
}

/** Sentence-sized pieces of a paragraph longer than `maxChars`. */
function splitLong(paragraph: string, maxChars: number): string[] {
  const sentences = sentencesOf(paragraph);
  const out: string[] = [];
  let current = "";
  for (const raw of sentences) {
    const sentence = raw.trim();
    if (!sentence) continue;
    if (sentence.length > maxChars) {
      if (current) out.push(current);
      current = "";
      out.push(...splitWords(sentence, maxChars));
      continue;
    }
    const candidate = current ? `${current} ${sentence}` : sentence;
    if (candidate.length <= maxChars) current = candidate;
    else {
      out.push(current);
      current = sentence;
    }
  }
  if (current) out.push(current);
  return out;
}

function splitWords(text: string, maxChars: number): string[] {
  const out: string[] = [];
  let current = "";
  for (const word of text.split(/\s+/)) {
    for (let i = 0; i < word.length; i += maxChars) {
      const part = word.slice(i, i + maxChars);
      const candidate = current ? `${current} ${part}` : part;
      if (candidate.length <= maxChars) current = candidate;
      else {
        out.push(current);
        current = part;
      }
    }
  }
  if (current) out.push(current);
  return out;
}

/** The last whole words of `text` within `maxChars`, used as the next chunk's overlap. */
function tail(text: string, maxChars: number): string {
  if (maxChars <= 0) return "";
  if (text.length <= maxChars) return text;
  const slice = text.slice(text.length - maxChars);
  const firstSpace = slice.search(/\s/);
  return (firstSpace >= 0 ? slice.slice(firstSpace) : slice).trim();
}
