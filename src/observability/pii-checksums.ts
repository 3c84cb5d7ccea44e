/**
 * The checks that tell a real identifier from a look-alike (a Luhn-valid card, an IBAN that passes
 * mod-97 at its country's length, a national id whose check letter or key agrees). The masking rules
 * match candidates cheaply and call these only on what they matched.
 */

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
export const IBAN_LENGTHS: Record<string, number> = {
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
export function entropyPerChar(value: string): number {
  const counts = new Map<string, number>();
  for (const ch of value) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / value.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

export const onlyDigits = (s: string): string => s.replace(/\D/g, "");

const DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE";

/** Spanish DNI/NIE: the letter is the number mod 23 (NIE's X/Y/Z read as 0/1/2). */
export function validSpanishId(id: string): boolean {
  const upper = id.toUpperCase();
  const nie = { X: "0", Y: "1", Z: "2" }[upper[0]!];
  const numeric = Number((nie ?? upper[0]) + upper.slice(1, 8));
  return DNI_LETTERS[numeric % 23] === upper[8];
}

/** French NIR: the 2-digit key is 97 minus the first 13 digits mod 97. */
export function validFrenchNir(id: string): boolean {
  const compact = id.replace(/ /g, "").toUpperCase();
  // Corsica's departments 2A/2B are replaced by numbers for the key (the official rule).
  const body = compact.slice(0, 13);
  const numeric = body.replace(/^(\d{5})2A/, "$119").replace(/^(\d{5})2B/, "$118");
  if (!/^\d{13}$/.test(numeric)) return false;
  const key = Number(compact.slice(13));
  return 97 - Number(BigInt(numeric) % 97n) === key;
}
