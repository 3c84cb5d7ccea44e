import { loggableError } from "./loggable-error.js";
import { isSecretProperty, maskPii } from "./pii-mask.js";

/**
 * Bounds on what one log call may write, applied to every value before it is serialised, with the
 * PII masking. No path — a huge error message, a document someone logged, a statement's
 * parameters — may write megabytes: one line once carried a 224 KB document as 3.9 MB of
 * decimal bytes. Cutting happens before masking, so masking also runs on bounded text.
 */

/** Longest string kept in a log record (message, stack, any field). */
export const MAX_LOG_STRING_CHARS = 4096;
/** What the values of one log call may add to its line, in bytes as written (escapes included). */
export const MAX_LOG_RECORD_BYTES = 32 * 1024;
/**
 * The bound tests hold every line to: one call's values, child bindings (bounded the same way,
 * each child's to BINDINGS_BYTES) and pino's own few fields.
 */
export const MAX_LOG_LINE_BYTES = 64 * 1024;
/** Child bindings are written on every line of the child: they get a smaller share. */
const BINDINGS_BYTES = 4 * 1024;
/**
 * Longer than anything a masking rule recognises (an e-mail address at most ~600 characters; a
 * token's unbounded tail is masked from its first characters). A cut can split an item so that
 * the rule misses it: the text is masked a little past the cut, and this much is then dropped.
 */
const LONGEST_MASKED_ITEM = 1024;
const MAX_DEPTH = 6;
const MAX_KEYS = 64;
const MAX_ITEMS = 32;
const MAX_KEY_CHARS = 128;
/** What a number, boolean or the punctuation around a value costs. */
const VALUE_COST = 8;

/**
 * `text` with personal data masked, at most `limit` characters (plus a marker saying how long it
 * was). Masks at most limit + LONGEST_MASKED_ITEM characters, whatever the length of `text`.
 */
export function boundedMaskedString(text: string, limit = MAX_LOG_STRING_CHARS): string {
  // Ids Fence generates (request, tenant, key and document ids) are on every line: a UUID is no one's
  // personal data, and skipping the rules for it halves what a log line's bindings cost.
  if (UUID.test(text)) return text;
  if (text.length <= limit) return maskPii(text);
  const window = text.slice(0, limit + LONGEST_MASKED_ITEM);
  const masked = maskPii(window);
  // An item the window's end cut in two was not recognised; whatever rule missed it, it is still
  // the window's unchanged tail, so it is within the last LONGEST_MASKED_ITEM characters of
  // `masked`. Dropping those drops it.
  let keep = Math.min(limit, window.length < text.length ? masked.length - LONGEST_MASKED_ITEM : masked.length);
  keep = Math.max(0, keep);
  // Never leave half a surrogate pair behind.
  if (keep > 0 && isHighSurrogate(masked.charCodeAt(keep - 1))) keep--;
  return `${masked.slice(0, keep)}…[cut: ${text.length} chars]`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;

/** Bytes `text` takes in a JSON line: control characters become 6-byte escapes, non-ASCII 2–3 bytes. */
function writtenBytes(text: string): number {
  let bytes = text.length + 2;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20) bytes += 5;
    else if (code === 0x22 || code === 0x5c) bytes += 1;
    else if (code >= 0x80) bytes += 2;
  }
  return bytes;
}

/** What JSON.stringify would write for `value` (a URL, a decimal): a log call must not throw. */
function jsonOf(value: object, toJSON: () => unknown): unknown {
  try {
    return toJSON.call(value);
  } catch {
    return "[unserialisable]";
  }
}

class Budget {
  private readonly seen = new WeakSet<object>();
  constructor(private left: number) {}

  string(text: string): string {
    if (this.left <= 0) return "[cut]";
    const out = boundedMaskedString(text, Math.min(MAX_LOG_STRING_CHARS, this.left));
    this.left -= writtenBytes(out);
    return out;
  }

  key(name: string): string {
    // Keys are Fence's own names almost always, but a tenant's metadata can bring its own.
    const out = /^[A-Za-z_][\w.-]{0,63}$/.test(name) ? name : boundedMaskedString(name, MAX_KEY_CHARS);
    this.left -= writtenBytes(out) + 1;
    return out;
  }

  value(value: unknown, depth: number): unknown {
    if (typeof value === "string") return this.string(value);
    if (value === null || typeof value !== "object") {
      this.left -= VALUE_COST;
      return value;
    }
    if (this.left <= 0) return "[cut]";
    if (value instanceof Date) {
      this.left -= 32;
      return value;
    }
    // Bytes are logged as their size: a Uint8Array serialises as one decimal field per byte.
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[${value.byteLength} bytes]`;
    if (this.seen.has(value)) return "[circular]";
    if (depth >= MAX_DEPTH) return "[nested too deep]";
    this.seen.add(value);
    try {
      if (value instanceof Error) return this.value(loggableError(value), depth);
      if (Array.isArray(value)) return this.array(value, depth);
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === "function") return this.value(jsonOf(value, toJSON as () => unknown), depth);
      return this.object(value as Record<string, unknown>, depth);
    } finally {
      this.seen.delete(value);
    }
  }

  private array(items: readonly unknown[], depth: number): unknown[] {
    const out: unknown[] = [];
    for (const item of items.slice(0, MAX_ITEMS)) {
      if (this.left <= 0) break;
      out.push(this.value(item, depth + 1));
    }
    if (out.length < items.length) out.push(`[${items.length - out.length} more]`);
    return out;
  }

  private object(value: Record<string, unknown>, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    let kept = 0;
    let total = 0;
    for (const name in value) {
      if (!Object.prototype.hasOwnProperty.call(value, name)) continue;
      total++;
      if (kept >= MAX_KEYS || this.left <= 0) continue;
      kept++;
      const field = value[name];
      out[this.key(name)] = typeof field === "string" && field !== "" && isSecretProperty(name) ? "[api_key]" : this.value(field, depth + 1);
    }
    if (kept < total) out["[fields_cut]"] = total - kept;
    return out;
  }
}

/**
 * The arguments of one log call, bounded and masked: the merge object (errors in it become their
 * loggable records, see loggable-error.ts), the message and format arguments. An error passed
 * alone becomes `{ err }`, as pino would make it, with its safe message as the line's message.
 */
export function boundLogArguments(args: readonly unknown[]): unknown[] {
  const budget = new Budget(MAX_LOG_RECORD_BYTES);
  const [first, ...rest] = args;
  if (first instanceof Error) {
    const err = budget.value(first, 0) as { message?: unknown };
    return [{ err }, ...(rest.length > 0 ? rest.map((arg) => budget.value(arg, 0)) : [err.message])];
  }
  return args.map((arg) => budget.value(arg, 0));
}

/** A child logger's bindings, bounded and masked (they are written on each of its lines). */
export function boundLogBindings<T>(bindings: T): T {
  return new Budget(BINDINGS_BYTES).value(bindings, 0) as T;
}

/** A whole record (the Workers build writes records itself), bounded and masked. */
export function boundLogRecord(record: object): object {
  return new Budget(MAX_LOG_RECORD_BYTES).value(record, 0) as object;
}

/** One error alone, as a log may hold it (pino's `err` serializer). */
export function boundLoggedError(error: unknown): unknown {
  return new Budget(MAX_LOG_RECORD_BYTES).value(error, 0);
}
