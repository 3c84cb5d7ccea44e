import { describe, expect, it } from "vitest";
import { countTopLevelArrayItems, parseJsonBody } from "../../../src/ingest/json-body.js";

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
    const limit = { key: "documents", max: 3 };
    const batch = (n: number, key = "documents") => bytes(`{"${key}":[${Array.from({ length: n }, () => '{"text":"a"}').join(",")}]}`);
    expect(parseJsonBody(batch(3), limit).kind).toBe("parsed");
    expect(parseJsonBody(batch(4), limit)).toEqual({ kind: "too_many_items" });
    // JSON.parse reads `documen\u0074s` as `documents`: so must the count.
    expect(parseJsonBody(batch(4, "documen\\u0074s"), limit)).toEqual({ kind: "too_many_items" });
    // The same array under another key is not counted.
    expect(parseJsonBody(batch(4, "other"), limit).kind).toBe("parsed");
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
