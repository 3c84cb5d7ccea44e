import { describe, expect, it } from "vitest";
import { chunkText } from "../../src/ingest/chunk-text.js";

describe("chunkText", () => {
  it("starts a new chunk at every Markdown heading and keeps the heading", () => {
    const chunks = chunkText("# Refunds\n\nWithin 30 days.\n\n## Shipping\n\nTwo days.", { maxChars: 500, overlapChars: 50 });
    expect(chunks).toEqual([
      { position: 0, heading: "Refunds", text: "Within 30 days." },
      { position: 1, heading: "Shipping", text: "Two days." },
    ]);
  });

  it("packs short paragraphs of one section together up to the limit", () => {
    const chunks = chunkText("One.\n\nTwo.\n\nThree.", { maxChars: 500, overlapChars: 50 });
    expect(chunks).toHaveLength(1);
    expect(chunks[0]!.text).toBe("One.\n\nTwo.\n\nThree.");
  });

  it("never exceeds maxChars, even for a long paragraph or a run-on word", () => {
    const sentence = "The quick brown fox jumps over the lazy dog. ";
    const text = `${sentence.repeat(60)}\n\n${"x".repeat(2500)}`;
    const chunks = chunkText(text, { maxChars: 300, overlapChars: 60 });
    expect(chunks.length).toBeGreaterThan(10);
    for (const chunk of chunks) expect(chunk.text.length).toBeLessThanOrEqual(300);
    // Nothing is lost: every x survives across the pieces.
    expect(chunks.map((c) => c.text).join("").split("x").length - 1).toBeGreaterThanOrEqual(2500);
  });

  it("overlaps consecutive chunks of a section so a boundary does not hide an answer", () => {
    const paragraphs = Array.from({ length: 6 }, (_, i) => `Paragraph ${i} ${"word ".repeat(30)}end${i}.`);
    const chunks = chunkText(paragraphs.join("\n\n"), { maxChars: 400, overlapChars: 80 });
    expect(chunks.length).toBeGreaterThan(1);
    for (let i = 1; i < chunks.length; i++) {
      const previousTail = chunks[i - 1]!.text.slice(-40).trim();
      expect(chunks[i]!.text).toContain(previousTail.split(" ").slice(-2).join(" "));
    }
  });

  it("numbers positions consecutively and ignores empty input", () => {
    expect(chunkText("   \n\n  ")).toEqual([]);
    const chunks = chunkText("# A\n\na\n\n# B\n\nb\n\n# C\n\nc");
    expect(chunks.map((c) => c.position)).toEqual([0, 1, 2]);
  });

  it("rejects an overlap that is not smaller than the chunk size", () => {
    expect(() => chunkText("text", { maxChars: 100, overlapChars: 100 })).toThrow(RangeError);
  });
});
