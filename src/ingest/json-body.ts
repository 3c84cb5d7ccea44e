/**
 * A request's JSON body, parsed where the runtime chooses (a parse thread on Node, inline on
 * Workers): 10 MB of JSON is ~20 ms to decode and ~40 ms to parse, and on the event loop that is
 * every other tenant's wait (issue 16). Plain data in, plain data out, so the same function runs
 * on either side of a thread.
 *
 * Before anything is built, the items of one top-level array can be counted in the raw text
 * (`items`): 690,000 tiny documents in 10 MB of JSON are 690,000 objects to build and
 * validate, and a linear scan that allocates nothing per item refuses them in milliseconds.
 *
 * A string longer than any field may hold (`maxStringChars`: the text limit) is refused where the
 * body was parsed, and not handed back: a flood of 10 MB texts parsed on a thread was copied onto
 * the event loop, 10 MB a request, only to be refused there.
 */

/** The one array whose items are counted before parsing (a batch's `documents`). */
export interface JsonItemLimit {
  key: string;
  max: number;
}

export interface JsonBodyLimits {
  /** Counted in the raw text before parsing. */
  items?: JsonItemLimit;
  /** The longest string anywhere in the body, in UTF-16 units (as `String.length`). */
  maxStringChars?: number;
}

export type JsonBodyOutcome =
  | { kind: "parsed"; value: unknown }
  /** Not JSON: the validator answers it as it answers any malformed body (400). */
  | { kind: "malformed" }
  /** More items under `items.key` than its max (the count stops at max + 1). */
  | { kind: "too_many_items" }
  /** Valid JSON nested too deeply to be handed across a thread (several thousand levels). */
  | { kind: "too_deep" }
  /** A string longer than `maxStringChars`, at `path` (`text`, `documents[3].text`; cut to 200 characters). */
  | { kind: "string_too_long"; path: string };

/** Bytes → outcome. Decoded as `Response.text()` does (UTF-8, BOM dropped, bad bytes replaced). */
export function parseJsonBody(bytes: Uint8Array, limits: JsonBodyLimits = {}): JsonBodyOutcome {
  const text = new TextDecoder().decode(bytes);
  const { items, maxStringChars } = limits;
  if (items && countTopLevelArrayItems(text, items.key, items.max) > items.max) return { kind: "too_many_items" };
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    return { kind: "malformed" };
  }
  // A value's strings are never longer than the text they were written in: most bodies need no walk.
  const found = maxStringChars !== undefined && text.length > maxStringChars ? longStringIn(value, maxStringChars) : undefined;
  if (found === undefined) return { kind: "parsed", value };
  return found === "too_deep" ? { kind: "too_deep" } : { kind: "string_too_long", path: found.path.slice(0, 200) };
}

/**
 * Deeper than this, a value is not walked (nor could it be handed across a thread: structured
 * cloning recurses, and overflows a few thousand levels down).
 */
const MAX_WALK_DEPTH = 10_000;

/**
 * Where in `value` a string longer than `max` is, as `a.b[2].c` (the top level: ""), or undefined;
 * `too_deep` past MAX_WALK_DEPTH levels. Walked with a stack of its own, not by recursion.
 */
export function longStringIn(value: unknown, max: number): { path: string } | "too_deep" | undefined {
  const stack: JsonNode[] = [{ value, depth: 0 }];
  for (let node = stack.pop(); node; node = stack.pop()) {
    const current = node.value;
    if (typeof current === "string") {
      if (current.length > max) return { path: pathOf(node) };
      continue;
    }
    if (current === null || typeof current !== "object") continue;
    if (node.depth >= MAX_WALK_DEPTH) return "too_deep";
    const depth = node.depth + 1;
    if (Array.isArray(current)) current.forEach((item, index) => stack.push({ value: item, parent: node, key: index, depth }));
    else for (const [key, item] of Object.entries(current)) stack.push({ value: item, parent: node, key, depth });
  }
  return undefined;
}

/** A value met on the walk, and where: its container and its key or index there (none at the top). */
interface JsonNode {
  value: unknown;
  parent?: JsonNode;
  key?: string | number;
  depth: number;
}

function pathOf(node: JsonNode): string {
  const keys: (string | number)[] = [];
  for (let at: JsonNode | undefined = node; at?.key !== undefined; at = at.parent) keys.push(at.key);
  return keys.reverse().reduce<string>((path, key) => (typeof key === "number" ? `${path}[${key}]` : path ? `${path}.${key}` : key), "");
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

function isJsonWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/** Whether the raw JSON string text[start, end) (between its quotes) means `key`, escapes included. */
function keyEquals(text: string, start: number, end: number, key: string): boolean {
  if (end - start === key.length && text.startsWith(key, start)) return true;
  // `"documen\u0074s"` is the same key to JSON.parse; only short escaped keys are worth decoding.
  if (end - start > key.length * 6) return false;
  let escaped = false;
  for (let i = start; i < end && !escaped; i++) escaped = text.charCodeAt(i) === BACKSLASH;
  if (!escaped) return false;
  try {
    return JSON.parse(text.slice(start - 1, end + 1)) === key;
  } catch {
    return false;
  }
}

/** Whether the quote at `at` is escaped: preceded (within the string) by an odd run of backslashes. */
function escapedAt(text: string, at: number, stringStart: number): boolean {
  let backslashes = 0;
  for (let i = at - 1; i >= stringStart && text.charCodeAt(i) === BACKSLASH; i--) backslashes++;
  return backslashes % 2 === 1;
}

/**
 * The number of elements of the array under `key` in the top-level object of a JSON text — the
 * largest, if the key repeats — found in one pass over the characters without building a value,
 * and given up as soon as it passes `stopAfter` (the answer is then `stopAfter + 1`). Malformed
 * JSON gives some count (possibly 0); refusing it as malformed is the validator's job.
 */
export function countTopLevelArrayItems(text: string, key: string, stopAfter = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let stringStart = -1;
  let lastStringStart = -1;
  let lastStringEnd = -1;
  /** The top-level key whose value comes next (set at its colon). */
  let valueOfKey = false;
  let counting = false;
  let commas = 0;
  let sawItem = false;
  let largest = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (stringStart >= 0) {
      // Jump to the closing quote natively: a quote preceded by an odd run of backslashes is escaped.
      let close = text.indexOf('"', i);
      while (close >= 0 && escapedAt(text, close, stringStart)) close = text.indexOf('"', close + 1);
      if (close < 0) break;
      lastStringStart = stringStart;
      lastStringEnd = close;
      stringStart = -1;
      i = close;
      continue;
    }
    if (counting && depth === 2 && !isJsonWhitespace(code) && code !== COMMA && code !== CLOSE_ARRAY) sawItem = true;
    switch (code) {
      case QUOTE:
        stringStart = i + 1;
        break;
      case COLON:
        if (depth === 1) valueOfKey = keyEquals(text, lastStringStart, lastStringEnd, key);
        break;
      case COMMA:
        if (depth === 1) valueOfKey = false;
        else if (counting && depth === 2 && ++commas + 1 > stopAfter) return stopAfter + 1;
        break;
      case OPEN_ARRAY:
      case OPEN_OBJECT:
        if (depth === 1 && code === OPEN_ARRAY && valueOfKey) {
          counting = true;
          commas = 0;
          sawItem = false;
        }
        depth++;
        break;
      case CLOSE_ARRAY:
      case CLOSE_OBJECT:
        depth--;
        if (counting && depth === 1) {
          largest = Math.max(largest, sawItem ? commas + 1 : 0);
          counting = false;
        }
        break;
    }
  }
  // A body cut off inside the array still says how many items it started.
  if (counting) largest = Math.max(largest, sawItem ? commas + 1 : 0);
  return largest;
}

