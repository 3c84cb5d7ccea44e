/**
 * Hand-written scans over untrusted text. A regular expression with nested or adjacent
 * quantifiers over the same characters backtracks polynomially on a crafted line (`# a`, 5,000
 * spaces, `x` took a minute through the old heading pattern), and the ingest path runs on text a
 * tenant chose. Each function here visits every character a bounded number of times.
 */

/** Exactly JavaScript's `\s` (WhiteSpace and LineTerminator), tested by code unit. */
export function isSpace(code: number): boolean {
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d);
  if (code < 0xa0) return false;
  return (
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

/** The Markdown ATX heading a line holds (`## Title ##`), its text without the markers; else undefined. */
export function atxHeadingOf(line: string): string | undefined {
  let level = 0;
  while (level < line.length && line.charCodeAt(level) === 0x23 /* # */) level++;
  if (level === 0 || level > 6 || level === line.length || !isSpace(line.charCodeAt(level))) return undefined;
  let start = level;
  while (start < line.length && isSpace(line.charCodeAt(start))) start++;
  // The closing sequence: trailing spaces, then #s, then spaces again (as the old pattern allowed).
  let end = line.length;
  while (end > start && isSpace(line.charCodeAt(end - 1))) end--;
  while (end > start && line.charCodeAt(end - 1) === 0x23) end--;
  while (end > start && isSpace(line.charCodeAt(end - 1))) end--;
  // A heading made only of #s (`# ##`) keeps its first one, as before.
  if (end === start && start < line.length && line.charCodeAt(start) === 0x23) end = start + 1;
  return line.slice(start, end);
}

/** At most `max` characters, cut at the last space of the second half when there is one. */
export function capAtWord(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = max;
  while (cut > max / 2 && !isSpace(text.charCodeAt(cut))) cut--;
  if (cut <= max / 2) cut = max;
  let end = cut;
  while (end > 0 && isSpace(text.charCodeAt(end - 1))) end--;
  return text.slice(0, end);
}

const SENTENCE_END = new Set([0x2e /* . */, 0x21 /* ! */, 0x3f /* ? */]);
const CLOSERS = new Set([0x22 /* " */, 0x27 /* ' */, 0x29 /* ) */, 0x5d /* ] */]);

/**
 * Sentences of a paragraph: text up to a run of `.!?`, then closing quotes or brackets, then
 * spaces. Punctuation with nothing before it stays with its sentence rather than being dropped.
 */
export function sentencesOf(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const start = i;
    while (i < text.length && SENTENCE_END.has(text.charCodeAt(i))) i++; // leading "..." joins its sentence
    while (i < text.length && !SENTENCE_END.has(text.charCodeAt(i))) i++;
    while (i < text.length && SENTENCE_END.has(text.charCodeAt(i))) i++;
    while (i < text.length && CLOSERS.has(text.charCodeAt(i))) i++;
    while (i < text.length && isSpace(text.charCodeAt(i))) i++;
    out.push(text.slice(start, i));
  }
  return out;
}

/**
 * Text as stored: NUL bytes removed (Postgres text cannot hold them), line endings unified,
 * spaces and tabs before a line end dropped, at most one empty line in a row, trimmed. One pass;
 * the old `/[ \t]+\n/g` was quadratic on a long run of spaces not followed by a line end.
 */
export function normalizeText(text: string): string {
  const parts: string[] = [];
  let line = "";
  let emptyLines = 0;
  let lines = 0;
  const endLine = () => {
    // Trailing spaces and tabs only (Unicode spaces inside text are content).
    let end = line.length;
    while (end > 0 && (line.charCodeAt(end - 1) === 0x20 || line.charCodeAt(end - 1) === 0x09)) end--;
    const kept = line.slice(0, end);
    line = "";
    if (kept === "") {
      emptyLines++;
      return;
    }
    // Empty lines before the first kept line would be trimmed anyway.
    if (lines > 0) parts.push(emptyLines > 0 ? "\n\n" : "\n");
    parts.push(kept);
    lines++;
    emptyLines = 0;
  };
  let segmentStart = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code !== 0x00 && code !== 0x0a && code !== 0x0d) continue;
    line += text.slice(segmentStart, i);
    segmentStart = i + 1;
    if (code === 0x00) continue;
    if (code === 0x0d && text.charCodeAt(i + 1) === 0x0a) segmentStart = ++i + 1;
    endLine();
  }
  line += text.slice(segmentStart);
  endLine();
  return parts.join("").trim();
}

/** Elements that never hold children, or that the HTML parser closes by itself (`<p>` after `<p>`). */
const NOT_NESTING = new Set(
  "area base br col embed hr img input link meta param source track wbr p li dt dd tr td th tbody thead tfoot option optgroup rb rt rp rtc colgroup caption".split(" "),
);

/**
 * Whether an HTML page nests elements deeper than `maxDepth`, by one scan of its tags (opening
 * tags minus closing ones; comments, script and style bodies skipped). html-to-text recurses once
 * per level, so depth — not size — is what overflows its stack: 2,000 `<div>`s are 24 KB.
 */
export function htmlNestsDeeperThan(html: string, maxDepth: number): boolean {
  const lower = html.toLowerCase();
  let depth = 0;
  let i = lower.indexOf("<");
  while (i >= 0 && i < lower.length) {
    if (lower.startsWith("<!--", i)) {
      const end = lower.indexOf("-->", i + 4);
      i = end < 0 ? -1 : lower.indexOf("<", end + 3);
      continue;
    }
    const closing = lower.charCodeAt(i + 1) === 0x2f; /* / */
    let nameEnd = i + (closing ? 2 : 1);
    const nameStart = nameEnd;
    while (nameEnd < lower.length && isTagNameChar(lower.charCodeAt(nameEnd))) nameEnd++;
    const name = lower.slice(nameStart, nameEnd);
    const tagEnd = lower.indexOf(">", nameEnd);
    if (tagEnd < 0) break;
    if (name && !NOT_NESTING.has(name)) {
      if (closing) depth = Math.max(0, depth - 1);
      else if (lower.charCodeAt(tagEnd - 1) !== 0x2f) depth++;
      if (depth > maxDepth) return true;
    }
    // Raw-text elements: their content is not markup.
    if (!closing && (name === "script" || name === "style")) {
      const end = lower.indexOf(`</${name}`, tagEnd);
      i = end < 0 ? -1 : end;
      continue;
    }
    i = lower.indexOf("<", tagEnd + 1);
  }
  return false;
}

function isTagNameChar(code: number): boolean {
  return (code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39) || code === 0x2d;
}
