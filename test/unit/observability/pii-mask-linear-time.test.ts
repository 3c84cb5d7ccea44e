import { describe, expect, it } from "vitest";
import { maskPii } from "../../../src/observability/pii-mask.js";

/**
 * The masker runs over every log string and every run record's text, which a tenant chooses. Each
 * rule is fed 100 KB of long runs of its own characters — the inputs that make a backtracking
 * pattern retry from every position — and must finish well inside a second (linear patterns take
 * a few to a few tens of milliseconds here; a quadratic one takes seconds).
 */
const SIZE = 100_000;
const BUDGET_MS = 1_000;
const fill = (unit: string, prefix = "", suffix = "") => prefix + unit.repeat(Math.ceil((SIZE - prefix.length - suffix.length) / unit.length)) + suffix;

const SHAPES: Record<string, string> = {
  // e-mail: local-part characters before an @, dotted runs, long domains with a failing TLD
  "email: a.a.a.… then @": fill("a.", "", "@"),
  "email: a run then @": fill("a", "", "@x"),
  "email: a@a@a@…": fill("a@"),
  "email: a-a@a-…": fill("a-a@a-"),
  "email: 8 labels of 63 and a bad TLD, repeated": fill(`${"a".repeat(64)}@${`${"b".repeat(63)}.`.repeat(8)}1 `),
  "email: @ then a.a.a.…": fill("a.", "x@"),
  // card, phone, national ids: digits with every separator
  "digits": fill("1"),
  "digits and spaces": fill("1 "),
  "digits and dashes": fill("1-"),
  "digits and dots": fill("1."),
  "digit pairs and spaces": fill("12 "),
  "digit triples and spaces": fill("123 "),
  "digit triples and dashes": fill("123-"),
  "zero-led groups": fill("01 "),
  "zero-led dotted pairs": fill("01."),
  "+CC and digits": fill("+1 "),
  "+CC with bracketed groups": fill("+1 (1) "),
  "00CC runs": fill("00 1 "),
  "NANP groups": fill("(555) "),
  "card-like groups": fill("4111 "),
  "mixed separators": fill("1 1-1.1,"),
  "SSN-like": fill("123-45-"),
  "NINO-like": fill("AB 12 "),
  "codice-fiscale-like": fill("ABCDEF12"),
  "DNI-like": fill("X1234567-"),
  "NIR-like": fill("1 23 "),
  // IBAN: country, check digits, then alphanumerics with and without separators
  "IBAN heads": fill("GB82 "),
  "IBAN-like alphanumerics": fill("GB12a"),
  "IBAN head then a long grouped run": fill(" A", "GB82"),
  // secrets: the prefixes, then long runs of the characters they allow
  "Bearer then a run": fill("a", "Bearer "),
  "Bearer Bearer …": fill("Bearer "),
  "Bearer -…": fill("Bearer -"),
  "key= then a run": fill("a", "key="),
  "key=key=…": fill("key="),
  "token: token: …": fill("token: "),
  "-key= short values": fill("-key=aaaaaaaaaaaaaa "),
  "api_key with spaces and quotes": fill("api_key \" = '"),
  "sk-sk-…": fill("sk-"),
  "sk- short keys": fill("sk-aaaaaaaaaaaaaaa "),
  "ghp_…": fill("ghp_"),
  "xoxa-…": fill("xoxa-"),
  "AIza-…": fill("AIza-"),
  "fence_…": fill("fence_"),
  "fence_prod_ then a run": fill("a", "fence_prod_"),
  "eyJ runs": fill("eyJ"),
  "eyJ-eyJ-…": fill("eyJ-"),
  "eyJ header, then eyJ-…": fill("eyJ-", "eyJaaaaaaaa.eyJ"),
  "eyJ header and dots": fill("eyJaaaaaaaa."),
};

describe("maskPii runs in linear time on pathological input", () => {
  it.each(Object.entries(SHAPES))("masks 100 KB of %s within a second", (_name, text) => {
    expect(text.length).toBeGreaterThanOrEqual(SIZE);
    const started = performance.now();
    maskPii(text);
    expect(performance.now() - started).toBeLessThan(BUDGET_MS);
  });

  it("still masks a JWT after a space, a quote or a colon (the tightened start)", () => {
    const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
    expect(maskPii(`token ${jwt} "${jwt}" auth:${jwt}`)).toBe("token [bearer_token] \"[bearer_token]\" auth:[bearer_token]");
  });
});
