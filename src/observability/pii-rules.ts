import { IBAN_LENGTHS, entropyPerChar, onlyDigits, passesIbanMod97, passesLuhn, validFrenchNir, validSpanishId } from "./pii-checksums.js";

/**
 * The masking rules, in the order they run: one regular expression per shape of personal data or
 * secret, with an optional check on each candidate. What each recognises is listed in pii-mask.ts.
 *
 * Every pattern here must stay linear in its input, because it runs on text an attacker chose:
 * each quantifier is bounded, or unambiguous (what it repeats cannot also be matched by what
 * follows it); an unbounded run either ends the pattern (a long run is one match, consumed once)
 * or may only start where that run of characters starts, so that no two attempts rescan the same
 * run. test/unit/observability/pii-mask-linear-time.test.ts feeds each rule long runs of its own
 * characters.
 */
export type PiiKind = "email" | "phone" | "card" | "iban" | "national_id" | "api_key" | "bearer_token";

export const placeholder = (kind: PiiKind): string => `[${kind}]`;

/** Not preceded by a word character, a dash, a dot or a comma: not the tail of an id or a decimal. */
const NUM_START = String.raw`(?<![\w.,-])`;
/**
 * Phone numbers have no checksum, so they must also not start inside a longer grouped number
 * ("1 85 05 78 …", an IBAN's "… 3704 0044 …"): not preceded by a digit and one separator.
 */
const PHONE_START = String.raw`(?<![\w.,-])(?<!\d[ .-])`;
/** Not followed by a word character, nor by `.5`, `,5`, `-5`: not the head of a longer number. */
const NUM_END = String.raw`(?![\w]|[.,-]\d)`;

export interface Rule {
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

export const RULES: readonly Rule[] = [
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
    // Starts only where a base64url run starts: with `\b`, "eyJ-eyJ-eyJ-…" (`-` is both a word
    // boundary and a base64url character) let every `eyJ` rescan the rest of the run for a `.`,
    // quadratic in the run (100 KB: seconds).
    pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g,
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
