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
 * Speed: runs on every log line. Every pattern is bounded or unambiguous (no nested quantifier can
 * split the same text two ways), so each scan is linear in the input; checksums run only on
 * candidates. Patterns whose trigger character is absent from the text are skipped.
 */

export type PiiKind = "email" | "phone" | "card" | "iban" | "national_id" | "api_key" | "bearer_token";

const placeholder = (kind: PiiKind): string => `[${kind}]`;

// ---------------------------------------------------------------- checksums

/** Luhn (mod 10) over a string of digits. */
export function passesLuhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/** ISO 13616 / ISO 7064 mod 97-10 over an IBAN without separators (upper case). */
export function passesIbanMod97(iban: string): boolean {
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const value = code >= 65 ? code - 55 : code - 48; // A=10 … Z=35
    remainder = value >= 10 ? (remainder * 100 + value) % 97 : (remainder * 10 + value) % 97;
  }
  return remainder === 1;
}

/** IBAN lengths by country (ISO 13616 registry). A country not listed is checked by mod-97 alone. */
const IBAN_LENGTHS: Record<string, number> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HN: 28, HR: 21, HU: 28,
  IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20,
  LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28,
  NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24,
  SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26,
  UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

/** Shannon entropy in bits per character. */
function entropyPerChar(value: string): number {
  const counts = new Map<string, number>();
  for (const ch of value) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / value.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

const onlyDigits = (s: string): string => s.replace(/\D/g, "");

// ---------------------------------------------------------------- rules

/** Not preceded by a word character, a dash, a dot or a comma: not the tail of an id or a decimal. */
const NUM_START = String.raw`(?<![\w.,-])`;
/**
 * Phone numbers have no checksum, so they must also not start inside a longer grouped number
 * ("1 85 05 78 …", an IBAN's "… 3704 0044 …"): not preceded by a digit and one separator.
 */
const PHONE_START = String.raw`(?<![\w.,-])(?<!\d[ .-])`;
/** Not followed by a word character, nor by `.5`, `,5`, `-5`: not the head of a longer number. */
const NUM_END = String.raw`(?![\w]|[.,-]\d)`;

interface Rule {
  kind: PiiKind;
  /** The rule runs only when the text contains one of these (cheap substring test). */
  triggers?: readonly string[];
  /** Needs a digit in the text to have any chance of matching. */
  needsDigit?: boolean;
  pattern: RegExp;
  /** Returns the replacement for a candidate, or undefined to leave it as it is. */
  replace?: (match: string, groups: Record<string, string | undefined>) => string | undefined;
}

function maskIbanCandidate(candidate: string): string | undefined {
  const compact = candidate.replace(/[ -]/g, "").toUpperCase();
  // Only registered countries, at their registered length: mod-97 alone passes one random
  // candidate in 97 (a hex hash, say). The candidate may run on into following words
  // ("… 0130 00 EUR"), so the check covers the country's length and the rest is kept.
  const length = IBAN_LENGTHS[compact.slice(0, 2)];
  if (!length || length > compact.length || !passesIbanMod97(compact.slice(0, length))) return undefined;
  let seen = 0;
  let end = 0;
  while (seen < length) {
    if (/[A-Za-z0-9]/.test(candidate[end]!)) seen++;
    end++;
  }
  const rest = candidate.slice(end);
  // A leftover that starts mid-group ("…0130 00EUR") means the match was not really an IBAN.
  if (rest !== "" && !/^[ -]/.test(rest)) return undefined;
  return placeholder("iban") + rest;
}

function maskCardCandidate(candidate: string): string | undefined {
  // Try the whole run, then shorter ones ending at a group separator (a card followed by a year).
  let end = candidate.length;
  while (end > 0) {
    const digits = onlyDigits(candidate.slice(0, end));
    if (digits.length < 13) return undefined;
    if (digits.length <= 19 && passesLuhn(digits)) return placeholder("card") + candidate.slice(end);
    end = Math.max(candidate.lastIndexOf(" ", end - 1), candidate.lastIndexOf("-", end - 1));
  }
  return undefined;
}

const DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE";

function validSpanishId(id: string): boolean {
  const upper = id.toUpperCase();
  const nie = { X: "0", Y: "1", Z: "2" }[upper[0]!];
  const numeric = Number((nie ?? upper[0]) + upper.slice(1, 8));
  return DNI_LETTERS[numeric % 23] === upper[8];
}

function validFrenchNir(id: string): boolean {
  const compact = id.replace(/ /g, "").toUpperCase();
  // Corsica's departments 2A/2B are replaced by numbers for the key (the official rule).
  const body = compact.slice(0, 13);
  const numeric = body.replace(/^(\d{5})2A/, "$119").replace(/^(\d{5})2B/, "$118");
  if (!/^\d{13}$/.test(numeric)) return false;
  const key = Number(compact.slice(13));
  return 97 - Number(BigInt(numeric) % 97n) === key;
}

const RULES: readonly Rule[] = [
  // Secrets first: they contain digit runs the later rules would otherwise half-mask.
  {
    kind: "api_key",
    triggers: ["fence_"],
    pattern: /\bfence_(?:prod|test|sandbox)_[0-9A-Za-z]{4,}/g,
  },
  {
    kind: "api_key",
    pattern:
      /\b(?:(?:sk|rk|pk)[-_](?:live_|test_|proj-|ant-)?[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}|xox[abposr]-[A-Za-z0-9-]{10,})/g,
  },
  {
    kind: "api_key",
    triggers: ["key", "KEY", "Key", "token", "TOKEN", "Token", "secret", "SECRET", "Secret"],
    pattern:
      /\b(?<name>(?:api[_-]?key|apikey|access[_-]?key|secret[_-]?key|key|(?:access|refresh|auth|api)?[_-]?token|client[_-]?secret|secret))(?<sep>["']?\s{0,3}[=:]\s{0,3}["']?)(?<value>[A-Za-z0-9._~+/=-]{16,})/gi,
    replace: (match, g) =>
      entropyPerChar(g.value!) >= 3 ? `${g.name}${g.sep}${placeholder("api_key")}` : undefined,
  },
  {
    kind: "bearer_token",
    triggers: ["earer", "EARER"],
    pattern: /\b(?<scheme>Bearer)\s{1,8}[A-Za-z0-9._~+/=-]{6,}/gi,
    replace: (_m, g) => `${g.scheme} ${placeholder("bearer_token")}`,
  },
  {
    kind: "bearer_token",
    triggers: ["eyJ"],
    pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g,
  },
  {
    kind: "email",
    triggers: ["@"],
    pattern: /[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])/g,
  },
  {
    kind: "iban",
    needsDigit: true,
    pattern: /\b[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11,30}\b/g,
    replace: (match) => maskIbanCandidate(match),
  },
  {
    kind: "national_id",
    needsDigit: true,
    // US SSN: area 001–899 except 666, group 01–99, serial 0001–9999.
    pattern: new RegExp(`${NUM_START}(?!000|666|9)\\d{3}-(?!00)\\d{2}-(?!0000)\\d{4}${NUM_END}`, "g"),
  },
  {
    kind: "national_id",
    needsDigit: true,
    // UK National Insurance number; the excluded prefixes are never issued.
    pattern:
      /\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b/gi,
  },
  {
    kind: "national_id",
    needsDigit: true,
    // Canadian SIN, grouped 3-3-3 with one consistent separator, Luhn-checked.
    pattern: new RegExp(`${NUM_START}\\d{3}(?<sep>[- ])\\d{3}\\k<sep>\\d{3}${NUM_END}`, "g"),
    replace: (match) => (passesLuhn(onlyDigits(match)) ? placeholder("national_id") : undefined),
  },
  {
    kind: "national_id",
    needsDigit: true,
    // Spanish DNI (8 digits + letter) and NIE (X/Y/Z + 7 digits + letter); the letter is a checksum.
    pattern: /\b[XYZxyz0-9]\d{7}-?[A-Za-z]\b/g,
    replace: (match) => (validSpanishId(match.replace("-", "")) ? placeholder("national_id") : undefined),
  },
  {
    kind: "national_id",
    needsDigit: true,
    // Italian codice fiscale: 6 letters, 2 digits, month letter, 2 digits, letter + 3 digits, check letter.
    pattern: /\b[A-Za-z]{6}\d{2}[ABCDEHLMPRSTabcdehlmprst]\d{2}[A-Za-z]\d{3}[A-Za-z]\b/g,
  },
  {
    kind: "national_id",
    needsDigit: true,
    // French NIR: sex, year, month, department (2A/2B for Corsica), commune, order, 2-digit key.
    pattern: new RegExp(
      `${NUM_START}[12] ?\\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\\d) ?(?:\\d{2}|2[ABab]) ?\\d{3} ?\\d{3} ?\\d{2}${NUM_END}`,
      "g",
    ),
    replace: (match) => (validFrenchNir(match) ? placeholder("national_id") : undefined),
  },
  {
    kind: "card",
    needsDigit: true,
    pattern: new RegExp(`${NUM_START}[2-6](?:[ -]?\\d){12,18}${NUM_END}`, "g"),
    replace: (match) => maskCardCandidate(match),
  },
  {
    kind: "phone",
    triggers: ["+", "00"],
    // International: + or 00, country code, then digits with single separators and optional
    // bracketed groups ("(0)", "(555)"); 8–15 digits in all (E.164).
    pattern: new RegExp(String.raw`(?<![\w+])(?<!\d[ .-])(?:\+|\b00)[1-9](?:[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d){6,16}(?!\w)`, "g"),
    replace: (match) => {
      const digits = onlyDigits(match).replace(/^00/, "").length;
      return digits >= 8 && digits <= 15 ? placeholder("phone") : undefined;
    },
  },
  {
    kind: "phone",
    needsDigit: true,
    // North America: (555) 123-4567, 555-123-4567, 555.123.4567, 555 123 4567, optional leading 1.
    pattern: new RegExp(
      `${PHONE_START}(?:1[ .-])?(?:\\([2-9]\\d{2}\\) ?|[2-9]\\d{2}[ .-])\\d{3}[ .-]\\d{4}${NUM_END}`,
      "g",
    ),
  },
  {
    kind: "phone",
    triggers: ["0"],
    // National trunk forms: 0 + area, grouped by spaces or dashes (10–12 digits), the French
    // dotted pairs, or 10–11 contiguous digits.
    pattern: new RegExp(
      `${PHONE_START}(?:0[1-9]\\d{0,3}(?:[ -]\\d{2,6}){1,4}|0[1-9](?:\\.\\d{2}){4}|0[1-9]\\d{8,9})${NUM_END}`,
      "g",
    ),
    replace: (match) => {
      const digits = onlyDigits(match).length;
      return digits >= 10 && digits <= 12 ? placeholder("phone") : undefined;
    },
  },
];

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
