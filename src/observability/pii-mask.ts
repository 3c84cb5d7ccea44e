import { placeholder, RULES } from "./pii-rules.js";

export { passesIbanMod97, passesLuhn } from "./pii-checksums.js";
export type { PiiKind } from "./pii-rules.js";

/**
 * Masks personal data and secrets in text before it is written anywhere (logs, run records).
 *
 * Each occurrence becomes a typed placeholder — `[email]`, `[phone]`, `[card]`, `[iban]`,
 * `[national_id]`, `[api_key]`, `[bearer_token]` — so a reader still sees *what* was there.
 *
 * What is recognised (and what is deliberately not):
 * - api_key: Fence keys `fence_<prod|test|sandbox>_…`; provider keys `sk-…`/`sk_live_…`/`rk_…`,
 *   GitHub `ghp_…`/`github_pat_…`, AWS `AKIA…`, Google `AIza…`, Slack `xox?-…`; and a value of 16+
 *   characters with ≥ 3 bits/char of entropy after `key=`, `api_key=`, `token=`, `secret=` (or `:`).
 * - bearer_token: `Bearer <token>` and bare JWTs (`eyJ….eyJ….…`).
 * - email: local@domain.tld (local part ≤ 64 chars, as RFC 5321 allows).
 * - iban: 2 letters, 2 check digits, 11–30 more characters, grouped or not; masked only when the
 *   ISO 13616 mod-97 check passes and the length fits the country (when the country is known).
 * - national_id: US SSN `ddd-dd-dddd` (valid areas only), UK National Insurance numbers, Canadian
 *   SIN `ddd-ddd-ddd` / `ddd ddd ddd` (Luhn-checked), Spanish DNI/NIE (check letter verified),
 *   Italian codice fiscale (structure), French NIR (15 digits, mod-97 key verified).
 * - card: 13–19 digits, optionally grouped by spaces or dashes, starting 2–6 (the issuer ranges in
 *   use), masked only when the Luhn check passes.
 * - phone: international `+CC …` (8–15 digits, E.164) or `00CC …`; North-American
 *   `(555) 123-4567` / `555-123-4567` / `555.123.4567`; national trunk forms starting with `0`
 *   (`020 7946 0958`, `07700 900123`, `01.23.45.67.89`, `0612345678`).
 *   Not masked: a bare run of digits without `+`, a trunk `0` or NANP grouping (it could be any
 *   id), and anything that is part of a longer word, decimal or dash-joined id (a UUID segment).
 *
 * Speed: runs on every log line, over text a tenant chose. Every pattern is linear in its input
 * (see pii-rules.ts for what that takes, and the test that holds each rule to it); checksums run
 * only on candidates. Patterns whose trigger character is absent from the text are skipped. The
 * logger also cuts each string to a few KB before masking it (log-value-bounds.ts).
 */

const HAS_DIGIT = /\d/;

/** Replaces every recognised piece of personal data or secret in `text` by a typed placeholder. */
export function maskPii(text: string): string {
  if (text.length < 6) return text;
  const hasDigit = HAS_DIGIT.test(text);
  let out = text;
  for (const rule of RULES) {
    if (rule.needsDigit && !hasDigit) continue;
    if (rule.triggers && !rule.triggers.some((t) => out.includes(t))) continue;
    rule.pattern.lastIndex = 0;
    const replace = rule.replace;
    out = replace
      ? out.replace(rule.pattern, (match: string, ...rest: unknown[]) => {
          const last = rest[rest.length - 1];
          const groups = (typeof last === "object" && last !== null ? last : {}) as Record<string, string | undefined>;
          return replace(match, groups) ?? match;
        })
      : out.replace(rule.pattern, placeholder(rule.kind));
  }
  return out;
}

/** Property names whose string value is a secret as a whole, whatever it looks like. */
const SECRET_PROPERTY = /^(?:api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|token|secret|client[_-]?secret|password|authorization)$/i;

/** A property of this name holds a secret as a whole: its string value is masked whole. */
export function isSecretProperty(name: string): boolean {
  return SECRET_PROPERTY.test(name);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function maskValue(value: unknown, seen: WeakSet<object>): unknown {
  if (typeof value === "string") return maskPii(value);
  if (Array.isArray(value)) {
    if (seen.has(value)) return "[circular]";
    seen.add(value);
    const out = value.map((item) => maskValue(item, seen));
    seen.delete(value);
    return out;
  }
  if (value instanceof Error) {
    // Errors are not plain objects, but their message and stack carry request text more often
    // than anything else. The copy keeps the error's class (loggers serialise it as an error,
    // with its type), with message, stack, cause and own fields masked.
    if (seen.has(value)) return "[circular]";
    seen.add(value);
    const out = Object.create(Object.getPrototypeOf(value) as object) as Error;
    for (const [k, v] of Object.entries(value)) (out as unknown as Record<string, unknown>)[k] = maskProperty(k, v, seen);
    Object.defineProperty(out, "message", { value: maskPii(value.message), enumerable: true, writable: true, configurable: true });
    if (value.stack !== undefined) {
      Object.defineProperty(out, "stack", { value: maskPii(value.stack), enumerable: false, writable: true, configurable: true });
    }
    if (value.cause !== undefined) {
      Object.defineProperty(out, "cause", { value: maskValue(value.cause, seen), enumerable: false, writable: true, configurable: true });
    }
    seen.delete(value);
    return out;
  }
  if (isPlainObject(value)) {
    if (seen.has(value)) return "[circular]";
    seen.add(value);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = maskProperty(k, v, seen);
    seen.delete(value);
    return out;
  }
  return value;
}

function maskProperty(name: string, value: unknown, seen: WeakSet<object>): unknown {
  if (typeof value === "string" && value !== "" && SECRET_PROPERTY.test(name)) return placeholder("api_key");
  return maskValue(value, seen);
}

/**
 * Masks every string inside plain objects and arrays, returning a copy; the input is not mutated.
 * Errors are copied too (same class; message, stack, cause and own fields masked). A string under a property named like a secret (`token`, `api_key`,
 * `password`, `authorization`, …) is replaced whole. Other values (numbers, dates, class instances)
 * are returned as they are.
 */
export function maskPiiDeep<T>(value: T): T {
  return maskValue(value, new WeakSet()) as T;
}
