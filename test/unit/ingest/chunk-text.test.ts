import { describe, expect, it } from "vitest";
import { chunkText, embeddingInputOf, MAX_HEADING_CHARS, maxEmbeddingInputChars } from "../../../src/ingest/chunk-text.js";

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

/**
 * Hostile input (issue 14, rows 1 and 3): every scan over tenant text is linear. Each input below
 * took seconds to minutes through the former regular expressions; the bound is generous, a
 * "finishes" check rather than a benchmark.
 */
describe("chunkText on pathological text", () => {
  const finishesQuickly = (run: () => unknown) => {
    const started = performance.now();
    run();
    expect(performance.now() - started).toBeLessThan(1_000);
  };

  it("parses a heading line of `# a`, 200,000 spaces and `x` in linear time (the old heading regex backtracked for minutes)", () => {
    let chunks: ReturnType<typeof chunkText> = [];
    finishesQuickly(() => (chunks = chunkText(`# a${" ".repeat(200_000)}x\n\nBody text.`)));
    expect(chunks).toHaveLength(1);
    expect(chunks[0]!.heading!.length).toBeLessThanOrEqual(MAX_HEADING_CHARS);
    expect(chunks[0]!.heading!.startsWith("a")).toBe(true);
  });

  it("handles long runs of # and a 200,000-character sentence-less paragraph", () => {
    finishesQuickly(() => chunkText(`${"#".repeat(200_000)}\n\n# ${"#".repeat(200_000)} x\n\n${"a".repeat(100_000)}${"!".repeat(100_000)}`));
    finishesQuickly(() => chunkText(`${"word ".repeat(40_000)}`));
  });

  it("keeps the heading rules: closing #s dropped, seven #s or no space is not a heading", () => {
    const chunks = chunkText("## Shipping ##\n\nTwo days.\n\n####### Seven\n\n#Tag line", { maxChars: 500, overlapChars: 50 });
    expect(chunks[0]).toMatchObject({ heading: "Shipping" });
    expect(chunks[0]!.text).toContain("####### Seven");
    expect(chunks[0]!.text).toContain("#Tag line");
  });

  it("cuts a long sentence-less paragraph at sentence ends without losing punctuation", () => {
    const text = `...Leading dots. ${"Short sentence here. ".repeat(100)}`;
    const chunks = chunkText(text, { maxChars: 300, overlapChars: 0 });
    expect(chunks[0]!.text.startsWith("...Leading dots.")).toBe(true);
    for (const chunk of chunks) expect(chunk.text.length).toBeLessThanOrEqual(300);
  });

  it("caps a 100 KB heading so one chunk's embedding input stays within maxChars + heading cap + 1", () => {
    const heading = "Heading words ".repeat(7_500); // ~105 KB
    const chunks = chunkText(`# ${heading}\n\nOne short paragraph.`);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]!.heading!.length).toBeLessThanOrEqual(MAX_HEADING_CHARS);
    expect(chunks[0]!.heading!.endsWith(" ")).toBe(false); // cut at a word, not mid-space
    const input = embeddingInputOf(chunks[0]!);
    expect(input.length).toBeLessThanOrEqual(maxEmbeddingInputChars());
    expect(input.endsWith("One short paragraph.")).toBe(true);
  });

  it("bounds the embedding input even for a chunk that did not come from chunkText", () => {
    const input = embeddingInputOf({ heading: "h".repeat(50_000), text: "t".repeat(50_000) }, { maxChars: 900, overlapChars: 150 });
    expect(input.length).toBeLessThanOrEqual(maxEmbeddingInputChars({ maxChars: 900, overlapChars: 150 }));
  });
});
