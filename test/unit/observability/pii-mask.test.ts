import { describe, expect, it } from "vitest";
import { maskPii, maskPiiDeep, passesIbanMod97, passesLuhn } from "../../../src/observability/pii-mask.js";

/** Masks `value` embedded in a sentence and expects exactly the placeholder in its place. */
function expectMasked(value: string, placeholder: string): void {
  const masked = maskPii(`before ${value} after`);
  expect(masked, value).toBe(`before ${placeholder} after`);
}

function expectUntouched(text: string): void {
  expect(maskPii(text), text).toBe(text);
}

describe("maskPii: e-mail addresses", () => {
  it.each(["alice@example.com", "john.doe+billing@mail.example.co.uk", "x_y-z%1@sub-domain.example.org"])("masks %s", (email) =>
    expectMasked(email, "[email]"),
  );

  it("masks an address at the very start and end of the text, and several in a row", () => {
    expect(maskPii("a@b.io,c@d.io")).toBe("[email],[email]");
  });

  it("leaves an @-mention and a bare domain alone", () => {
    expectUntouched("ping @alice about example.com");
  });
});

describe("maskPii: phone numbers", () => {
  it.each([
    "+44 20 7946 0958",
    "+1 (555) 123-4567",
    "+33 6 12 34 56 78",
    "+49 30 1234567",
    "+14155552671",
    "+44 (0)20 7946 0958",
    "0044 20 7946 0958",
    "(555) 123-4567",
    "555-123-4567",
    "555.123.4567",
    "1-800-555-0199",
    "020 7946 0958",
    "07700 900123",
    "01.23.45.67.89",
    "0612345678",
    "030-1234-5678",
  ])("masks %s", (phone) => expectMasked(phone, "[phone]"));

  it("keeps the punctuation around a number", () => {
    expect(maskPii("Maria (+44 20 7946 0958) or (555) 123-4567.")).toBe("Maria ([phone]) or [phone].");
  });

  it.each([
    "In 2024 the price rose from $1,234.56 to $2,345.67 (12.5%).",
    "Order #12345678 shipped; invoice 2024-0042 paid.",
    "request 3f2a6b1c-1234-5678-9abc-012345678901 done",
    "at 2024-06-10T12:34:56.789Z and on 01.02.2024 10:00",
    "pi is 3.14159265358979 and e is 2.718281828459045",
    "epoch ms 1718041234567, seconds 1718041234",
    "from 192.168.1.100 and 10.0.0.1",
    "version 1.2.3 of 10,000,000 rows, +5 points, room 101",
    "ISBN 978-3-16-148410-0",
    "ratio 0.1234567890123",
    "a count of 5551234567 bare digits is not a phone",
    "range 100-200-3000",
  ])("leaves ordinary numbers alone: %s", (text) => expectUntouched(text));
});

describe("maskPii: card numbers (Luhn-checked)", () => {
  it.each([
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111111111111111",
    "5500 0055 5555 5559",
    "3782 822463 10005",
    "6011111111111117",
    "4222222222222",
    "2223003122003222",
  ])("masks %s", (card) => expectMasked(card, "[card]"));

  it("does not mask a 16-digit number that fails the Luhn check", () => {
    expect(passesLuhn("4111111111111112")).toBe(false);
    expectUntouched("card 4111 1111 1111 1112 and 4111111111111112");
  });

  it("does not mask a Luhn-valid number outside the issuer ranges (a timestamp-like id)", () => {
    expect(passesLuhn("1000000000000008")).toBe(true);
    expectUntouched("id 1000000000000008");
  });

  it("masks the card and keeps a year written after it", () => {
    expect(maskPii("card 4111 1111 1111 1111 2027")).toBe("card [card] 2027");
  });

  it("does not mask digits that are part of a decimal or a longer word", () => {
    expectUntouched("value 0.4111111111111111 and x4111111111111111");
  });
});

describe("maskPii: IBANs (ISO 13616 mod-97)", () => {
  it.each([
    "DE89 3704 0044 0532 0130 00",
    "DE89370400440532013000",
    "GB82 WEST 1234 5698 7654 32",
    "FR14 2004 1010 0505 0001 3M02 606",
    "NL91ABNA0417164300",
    "gb82west12345698765432",
  ])("masks %s", (iban) => expectMasked(iban, "[iban]"));

  it("does not mask an IBAN-shaped string whose check digits are wrong", () => {
    expect(passesIbanMod97("DE89370400440532013001")).toBe(false);
    expectUntouched("iban DE89 3704 0044 0532 0100 00 and GB82WEST12345698765433");
  });

  it("keeps the words written after an IBAN", () => {
    expect(maskPii("pay DE89 3704 0044 0532 0130 00 EUR today")).toBe("pay [iban] EUR today");
  });

  it("does not mask a hex digest that happens to start like an IBAN", () => {
    expectUntouched("sha de12a9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  });
});

describe("maskPii: national ids", () => {
  it.each([
    ["US SSN", "123-45-6789"],
    ["UK National Insurance number", "AB123456C"],
    ["UK National Insurance number, spaced", "AB 12 34 56 C"],
    ["Canadian SIN", "046 454 286"],
    ["Canadian SIN, dashed", "046-454-286"],
    ["Spanish DNI", "12345678Z"],
    ["Spanish NIE", "X1234567L"],
    ["Italian codice fiscale", "RSSMRA85T10A562S"],
    ["French NIR", "1 85 05 78 006 084 91"],
    ["French NIR, compact", "185057800608491"],
  ])("masks a %s", (_kind, id) => expectMasked(id, "[national_id]"));

  it.each([
    ["an SSN with area 000", "000-12-3456"],
    ["an SSN with area 666", "666-12-3456"],
    ["an SSN with group 00", "123-00-4567"],
    ["an NI number with a prefix never issued", "QQ123456C"],
    ["an NI number with a prefix never issued", "GB123456A"],
    ["a SIN failing Luhn", "046 454 287"],
    ["a DNI with the wrong check letter", "12345678A"],
    ["a NIR with the wrong key", "1 85 05 78 006 084 92"],
  ])("does not mask %s (%s)", (_why, id) => expectUntouched(`id ${id} here`));

  it("leaves a long run of grouped numbers alone (no phone found inside it)", () => {
    expectUntouched("values 1 85 05 78 006 084 92");
  });
});

describe("maskPii: API keys and bearer tokens", () => {
  const fenceKey = "fence_prod_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";

  it.each([
    fenceKey,
    "fence_test_Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8Nn7Mm",
    "fence_sandbox_notquiteakey",
    "sk-proj-Abc123Def456Ghi789Jkl012",
    "sk-ant-api03-Abc123Def456Ghi789",
    "sk_live_51Habcdefghijklmnop",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "AKIAIOSFODNN7EXAMPLE",
    "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    "xoxb-1234567890-abcdefghij",
  ])("masks the provider key %s", (key) => expectMasked(key, "[api_key]"));

  it("masks a long high-entropy value after key=, api_key=, token= and JSON-ish forms, keeping the name", () => {
    expect(maskPii("GET /x?api_key=Zx81Kq0PlmN3vB7tQ2 ok")).toBe("GET /x?api_key=[api_key] ok");
    expect(maskPii("token: 'ab12CD34ef56GH78ij90'")).toBe("token: '[api_key]'");
    expect(maskPii('{"key":"9fJ2kL0pQ7xZ3mN8vB1c"}')).toBe('{"key":"[api_key]"}');
    expect(maskPii("access_token=eW91IHNob3VsZCBub3Qgc2VlIHRoaXM")).toBe("access_token=[api_key]");
  });

  it("leaves short or low-entropy values after key= alone", () => {
    expectUntouched("token=short and key=aaaaaaaaaaaaaaaaaaaaaa and key_id=42");
  });

  it("masks bearer tokens and JWTs", () => {
    expect(maskPii("Authorization: Bearer abc123.def456-ghi")).toBe("Authorization: Bearer [bearer_token]");
    expect(maskPii(`Bearer ${fenceKey}`)).toBe("Bearer [api_key]");
    const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    expect(maskPii(`jwt ${jwt} end`)).toBe("jwt [bearer_token] end");
  });
});

describe("maskPii: mixed text", () => {
  it("masks every kind in one passage and keeps the prose", () => {
    const text =
      "Contact Jane at jane.roe@example.com or +44 20 7946 0958. Card 4111 1111 1111 1111, " +
      "IBAN GB82 WEST 1234 5698 7654 32, SSN 123-45-6789, key sk-proj-Abc123Def456Ghi789Jkl012.";
    expect(maskPii(text)).toBe(
      "Contact Jane at [email] or [phone]. Card [card], IBAN [iban], SSN [national_id], key [api_key].",
    );
  });

  it("is idempotent: masking masked text changes nothing", () => {
    const once = maskPii("mail a@b.io card 4111111111111111 phone +44 20 7946 0958");
    expect(maskPii(once)).toBe(once);
  });
});

describe("maskPii: linear time on adversarial input", () => {
  const size = 100_000;
  const inputs: Record<string, string> = {
    "one long word": "a".repeat(size),
    "one long digit run": "4".repeat(size),
    "digits and spaces": "4 ".repeat(size / 2),
    "digits and dashes": "4-".repeat(size / 2),
    "dotted local part without @": "a.".repeat(size / 2),
    "dotted local part then @": `${"a.".repeat(size / 2 - 1)}@`,
    "many @": "a@".repeat(size / 2),
    "domain labels without a TLD": `x@${"a-".repeat(size / 2 - 1)}`,
    "domain with many dots": `aa@${"b.".repeat(size / 2 - 2)}`,
    "plus signs and digits": "+1 ".repeat(Math.floor(size / 3)),
    "parenthesised digits": "(1)".repeat(Math.floor(size / 3)),
    "zeros and spaces": "0 ".repeat(size / 2),
    "IBAN-like prefixes": "DE89 ".repeat(size / 5),
    "letter-digit pairs": "AB12".repeat(size / 4),
    "key= without value": "key=".repeat(size / 4),
    "Bearer without token": "Bearer ".repeat(Math.floor(size / 7)),
    "JWT starts": "eyJ".repeat(Math.floor(size / 3)),
    "Fence key prefixes": "fence_prod_".repeat(Math.floor(size / 11)),
    "SSN-like fragments": "123-45-".repeat(Math.floor(size / 7)),
  };

  // A second, as in pii-mask-linear-time.test.ts: linear patterns take tens of milliseconds here, a
  // quadratic one seconds, and 200 ms was within reach of a loaded CI machine (274 ms seen).
  it.each(Object.entries(inputs))("masks 100 KB of %s in well under a second", (_name, input) => {
    maskPii(input.slice(0, 1000)); // warm the regexes
    const started = performance.now();
    maskPii(input);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe("maskPiiDeep", () => {
  it("masks strings in nested objects and arrays and leaves other values as they are", () => {
    const when = new Date(0);
    const input = {
      user: { email: "alice@example.com", phones: ["+44 20 7946 0958", "none"] },
      count: 4111111111111111,
      ok: true,
      when,
      nothing: null,
    };
    const out = maskPiiDeep(input);
    expect(out).toEqual({
      user: { email: "[email]", phones: ["[phone]", "none"] },
      count: 4111111111111111,
      ok: true,
      when,
      nothing: null,
    });
  });

  it("does not mutate its input", () => {
    const input = { a: ["bob@example.com"], b: { c: "4111 1111 1111 1111" } };
    const copy = structuredClone(input);
    maskPiiDeep(input);
    expect(input).toEqual(copy);
  });

  it("masks a whole string under a property named like a secret", () => {
    expect(maskPiiDeep({ password: "hunter2", token: "t", authorization: "Basic dXNlcjpwYXNz", key_id: "k1" })).toEqual({
      password: "[api_key]",
      token: "[api_key]",
      authorization: "[api_key]",
      key_id: "k1",
    });
  });

  it("masks an error's message, stack and own fields and keeps its class", () => {
    class UpstreamFailure extends Error {
      detail = "caller carol@example.com";
    }
    const error = new UpstreamFailure("provider echoed sk-proj-Abc123Def456Ghi789Jkl012");
    const out = maskPiiDeep({ err: error }).err as UpstreamFailure;
    expect(out).toBeInstanceOf(UpstreamFailure);
    expect(out.message).toBe("provider echoed [api_key]");
    expect(out.stack).not.toContain("sk-proj-");
    expect(out.detail).toBe("caller [email]");
    expect(error.message).toContain("sk-proj-"); // the original is untouched
  });

  it("survives circular structures", () => {
    const node: Record<string, unknown> = { mail: "dave@example.com" };
    node.self = node;
    expect(maskPiiDeep(node)).toEqual({ mail: "[email]", self: "[circular]" });
  });
});
