import { describe, expect, it } from "vitest";
import { bearerToken, generateApiKey, hashApiKey, keyPrefix, looksLikeApiKey, secretsEqual } from "../../../src/tenancy/api-keys.js";

describe("API keys", () => {
  it("generates well-formed, unique keys whose stored hash is not the key", () => {
    const keys = Array.from({ length: 200 }, () => generateApiKey("prod"));
    expect(new Set(keys.map((k) => k.key)).size).toBe(200);
    for (const { key, hash, prefix } of keys) {
      expect(looksLikeApiKey(key)).toBe(true);
      expect(key).toMatch(/^fence_prod_[0-9A-Za-z]{40}$/);
      expect(hash).toMatch(/^[0-9a-f]{64}$/);
      expect(hash).not.toContain(key.slice(11));
      expect(key.startsWith(prefix)).toBe(true);
      expect(prefix).toHaveLength("fence_prod_".length + 6);
    }
  });

  it("uses every base62 character (no modulo bias towards a subset)", () => {
    const chars = new Set(Array.from({ length: 300 }, () => generateApiKey("test").key.slice(11)).join(""));
    expect(chars.size).toBe(62);
  });

  it("hashes deterministically and distinguishes keys that differ in one character", () => {
    const { key } = generateApiKey("sandbox");
    const other = key.slice(0, -1) + (key.endsWith("a") ? "b" : "a");
    expect(hashApiKey(key)).toBe(hashApiKey(key));
    expect(hashApiKey(key)).not.toBe(hashApiKey(other));
    expect(keyPrefix(key)).toBe(key.slice(0, "fence_sandbox_".length + 6));
  });

  it.each([
    "",
    "fence_prod_short",
    "fence_live_0123456789012345678901234567890123456789",
    "fence_prod_0123456789012345678901234567890123456789x",
    "fence_prod_01234567890123456789012345678901234567'-",
    "Bearer fence_prod_0123456789012345678901234567890123456789",
  ])("rejects malformed key %j before any lookup", (candidate) => {
    expect(looksLikeApiKey(candidate)).toBe(false);
  });

  it.each([
    [undefined, undefined],
    ["", undefined],
    ["Basic abc", undefined],
    ["Bearer", undefined],
    ["Bearer a b", undefined],
    ["Bearer abc", "abc"],
    ["  Bearer abc  ", "abc"],
  ])("parses the Authorization header %j", (header, expected) => {
    expect(bearerToken(header)).toBe(expected);
  });

  it("compares secrets of different lengths without throwing", () => {
    expect(secretsEqual("a", "a")).toBe(true);
    expect(secretsEqual("a", "ab")).toBe(false);
    expect(secretsEqual("admin-secret", "admin-secreT")).toBe(false);
  });
});
