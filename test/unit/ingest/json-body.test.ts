import { describe, expect, it } from "vitest";
import { countTopLevelArrayItems, longStringIn, parseJsonBody } from "../../../src/ingest/json-body.js";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("parseJsonBody", () => {
  it("parses UTF-8 as Response.text() decodes it: a leading BOM is dropped", () => {
    expect(parseJsonBody(bytes('\uFEFF{"text":"Grüße, 東京"}'))).toEqual({ kind: "parsed", value: { text: "Grüße, 東京" } });
  });

  it("reports malformed JSON without throwing", () => {
    expect(parseJsonBody(bytes('{"text": "cut off'))).toEqual({ kind: "malformed" });
    expect(parseJsonBody(bytes(""))).toEqual({ kind: "malformed" });
  });

  it("refuses a batch past its item limit before building it, whatever the key's spelling", () => {
    const limit = { items: { key: "documents", max: 3 } };
    const batch = (n: number, key = "documents") => bytes(`{"${key}":[${Array.from({ length: n }, () => '{"text":"a"}').join(",")}]}`);
    expect(parseJsonBody(batch(3), limit).kind).toBe("parsed");
    expect(parseJsonBody(batch(4), limit)).toEqual({ kind: "too_many_items" });
    // JSON.parse reads `documen\u0074s` as `documents`: so must the count.
    expect(parseJsonBody(batch(4, "documen\\u0074s"), limit)).toEqual({ kind: "too_many_items" });
    // The same array under another key is not counted.
    expect(parseJsonBody(batch(4, "other"), limit).kind).toBe("parsed");
  });

  it("refuses a string longer than maxStringChars anywhere in the body, naming where it is", () => {
    const limit = { maxStringChars: 10 };
    expect(parseJsonBody(bytes(JSON.stringify({ text: "x".repeat(10) })), limit)).toEqual({ kind: "parsed", value: { text: "x".repeat(10) } });
    expect(parseJsonBody(bytes(JSON.stringify({ text: "x".repeat(11) })), limit)).toEqual({ kind: "string_too_long", path: "text" });
    const batch = { documents: [{ text: "short" }, { text: "short", metadata: { note: "y".repeat(11) } }] };
    expect(parseJsonBody(bytes(JSON.stringify(batch)), limit)).toEqual({ kind: "string_too_long", path: "documents[1].metadata.note" });
    expect(parseJsonBody(bytes(JSON.stringify("z".repeat(11))), limit)).toEqual({ kind: "string_too_long", path: "" });
    // Counted as String.length counts: escapes are one unit each, an astral character two.
    expect(parseJsonBody(bytes(`{"text":"${"\\n".repeat(10)}"}`), limit).kind).toBe("parsed");
    expect(parseJsonBody(bytes(JSON.stringify({ text: "😀".repeat(5) })), limit).kind).toBe("parsed");
    expect(parseJsonBody(bytes(JSON.stringify({ text: "😀".repeat(5) + "a" })), limit).kind).toBe("string_too_long");
    // A long key is not a string value; nor is a long array of short strings.
    expect(parseJsonBody(bytes(JSON.stringify({ ["k".repeat(50)]: "v", list: Array(50).fill("s") })), limit).kind).toBe("parsed");
  });

  it("walks a body thousands of levels deep without recursion, and gives up past 10,000 levels", () => {
    const nested = (levels: number) => `${'{"a":'.repeat(levels)}"${"x".repeat(11)}"${"}".repeat(levels)}`;
    expect(longStringIn(JSON.parse(nested(9_000)), 10)).toEqual({ path: Array(9_000).fill("a").join(".") });
    expect(parseJsonBody(bytes(nested(9_000)), { maxStringChars: 10 })).toEqual({ kind: "string_too_long", path: expect.stringMatching(/^(a\.){100}$/) }); // cut to 200 characters
    expect(parseJsonBody(bytes(nested(20_000)), { maxStringChars: 10 })).toEqual({ kind: "too_deep" });
    // Under the limit's length, nothing is walked: the same depth parses.
    expect(parseJsonBody(bytes(nested(20_000)), { maxStringChars: 1_000_000 }).kind).toBe("parsed");
  });
});

describe("countTopLevelArrayItems", () => {
  it("counts only the top-level array under the key, skipping strings that look like JSON", () => {
    expect(countTopLevelArrayItems('{"documents":[1,[2,3],{"a":[4,5]},"x,y]"]}', "documents")).toBe(4);
    expect(countTopLevelArrayItems('{"nested":{"documents":[1,2,3]},"documents":[]}', "documents")).toBe(0);
    expect(countTopLevelArrayItems('{"documents":["a\\"],b"]}', "documents")).toBe(1);
  });

  it("stops once past the limit, and counts a body cut off inside the array", () => {
    expect(countTopLevelArrayItems(`{"documents":[${"1,".repeat(1_000)}1]}`, "documents", 10)).toBe(11);
    expect(countTopLevelArrayItems('{"documents":[1,2,3', "documents")).toBe(3);
  });
});
