/**
 * Counting the items of an upload in its raw bytes, before anything parses them. Parsing is what
 * costs: 690,000 tiny documents in 10 MB of JSON are 690,000 objects to build and validate, and
 * 80,000 one-byte multipart parts are 80,000 File objects. A linear scan that allocates nothing per
 * item can refuse such a body in milliseconds, while the exact limits stay with the route.
 */

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

/** The `boundary` parameter of a multipart content type, or undefined. */
export function multipartBoundary(contentType: string): string | undefined {
  const lower = contentType.toLowerCase();
  const at = lower.indexOf("boundary=");
  if (at < 0) return undefined;
  let value = contentType.slice(at + "boundary=".length);
  if (value.startsWith('"')) {
    const close = value.indexOf('"', 1);
    value = close < 0 ? value.slice(1) : value.slice(1, close);
  } else {
    const end = value.search(/[;,\s]/);
    if (end >= 0) value = value.slice(0, end);
  }
  return value.length > 0 && value.length <= 200 ? value : undefined;
}

/**
 * An upper bound on the parts of a multipart body: the delimiter lines (`--boundary`) minus the
 * closing one. Buffer.indexOf is a native substring search, linear in the body.
 */
export function countMultipartParts(body: Uint8Array, boundary: string): number {
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const delimiter = Buffer.from(`--${boundary}`, "utf8");
  let delimiters = 0;
  for (let at = bytes.indexOf(delimiter); at >= 0; at = bytes.indexOf(delimiter, at + delimiter.length)) delimiters++;
  return Math.max(0, delimiters - 1);
}
