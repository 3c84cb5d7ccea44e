import { describe, expect, it } from "vitest";
import { PayloadTooLargeError, UnprocessableDocumentError, UnsupportedMediaTypeError } from "../../../src/core/errors.js";
import { makeCompressionBombPdf, makePdf } from "../../support/make-pdf.js";
import { detectMediaType, extractText, normalizeText, textFileTooLong } from "../../../src/ingest/parse-document.js";
import { htmlNestsDeeperThan } from "../../../src/ingest/text-scan.js";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("parse-document", () => {
  it.each([
    ["notes.txt", "text/plain", "text/plain"],
    ["notes.md", "text/markdown; charset=utf-8", "text/markdown"],
    ["notes.md", "application/octet-stream", "text/markdown"],
    ["page.HTML", undefined, "text/html"],
    ["report.pdf", "application/pdf", "application/pdf"],
    ["anything", "text/plain", "text/plain"],
  ])("detects %s (%s) as %s", (name, declared, expected) => {
    expect(detectMediaType(name, declared)).toBe(expected);
  });

  it.each([
    ["photo.png", "image/png"],
    ["tool.exe", "application/octet-stream"],
    ["data.bin", undefined],
    ["notes.md", "image/png"],
  ])("refuses %s (%s) with 415", (name, declared) => {
    expect(() => detectMediaType(name, declared)).toThrow(UnsupportedMediaTypeError);
  });

  it("strips HTML markup, scripts and styles", async () => {
    const text = await extractText(
      bytes("<html><head><style>.x{}</style><script>alert('x')</script></head><body><h1>Title</h1><p>Hello <b>world</b></p></body></html>"),
      "text/html",
    );
    expect(text).toContain("Title");
    expect(text).toContain("Hello world");
    expect(text).not.toContain("alert");
    expect(text).not.toContain("<");
  });

  it("rejects bytes that are not UTF-8 and files that are not PDFs", async () => {
    await expect(extractText(new Uint8Array([0xff, 0xfe, 0x00, 0xc3]), "text/plain")).rejects.toThrow(UnprocessableDocumentError);
    await expect(extractText(bytes("not a pdf"), "application/pdf")).rejects.toThrow(UnprocessableDocumentError);
    await expect(extractText(bytes("%PDF-1.4 garbage"), "application/pdf")).rejects.toThrow(UnprocessableDocumentError);
  });

  it("normalises text for storage: no NUL bytes, unified line endings, trimmed", () => {
    expect(normalizeText("  a\u0000b\r\nc  \r\n\n\n\nd  ")).toBe("ab\nc\n\nd");
  });

  it("keeps normalising the way it did: trailing spaces before line ends, at most one empty line", () => {
    expect(normalizeText("a \t\n \n\n\nb\r\nc\rd\u0000 \n")).toBe("a\n\nb\nc\nd");
    expect(normalizeText("x\u00a0 \ny")).toBe("x\u00a0\ny");
  });

  it("normalises 200,000 spaces not followed by a line end in linear time (the old /[ \\t]+\\n/g was quadratic)", () => {
    const started = performance.now();
    expect(normalizeText(`a${" ".repeat(200_000)}x`)).toBe(`a${" ".repeat(200_000)}x`);
    expect(normalizeText(`a${" \t".repeat(100_000)}\nb`)).toBe("a\nb");
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it("refuses a 300,000-character file name quickly, with a bounded message", () => {
    const name = `${"n".repeat(300_000)}.exe`;
    expect(() => detectMediaType(name, undefined)).toThrow(UnsupportedMediaTypeError);
    expect(() => detectMediaType("x", `${"a".repeat(300_000)};${"b".repeat(300_000)}`)).toThrow(/^Unsupported file type '.{1,100}'/);
    expect(() => detectMediaType("notes.constructor", undefined)).toThrow(UnsupportedMediaTypeError);
  });

  it("answers 2,000 nested <div>s with unprocessable_document, not a stack overflow", async () => {
    const html = `${"<div>".repeat(2_000)}deep${"</div>".repeat(2_000)}`;
    await expect(extractText(bytes(html), "text/html")).rejects.toThrow(UnprocessableDocumentError);
  });

  it("measures nesting by tags, ignoring void and self-closing elements, comments and scripts", () => {
    expect(htmlNestsDeeperThan(`${"<div>".repeat(600)}x`, 512)).toBe(true);
    expect(htmlNestsDeeperThan("<div><p>a<p>b<br><img src=x/></div>".repeat(5_000), 512)).toBe(false);
    expect(htmlNestsDeeperThan(`<script>${"<div>".repeat(600)}</script><!-- ${"<div>".repeat(600)} -->`, 512)).toBe(false);
    expect(htmlNestsDeeperThan(`${"<li>".repeat(5_000)}`, 512)).toBe(false);
    const started = performance.now();
    htmlNestsDeeperThan("<a".repeat(100_000) + "<b>".repeat(100_000), 1e9);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it("counts a text file's characters as UTF-16 units, as a JSON text's, deciding by size alone where it can", () => {
    const max = 1_000;
    // One byte per unit: the limit itself passes, one more is refused.
    expect(textFileTooLong(bytes("a".repeat(max)), "text/plain", max)).toBe(false);
    expect(textFileTooLong(bytes("a".repeat(max + 1)), "text/markdown", max)).toBe(true);
    // Three bytes per unit: 3,000 bytes are 1,000 characters (the decoded count decides, not the size).
    expect(textFileTooLong(bytes("€".repeat(max)), "text/plain", max)).toBe(false);
    expect(textFileTooLong(bytes("€".repeat(max + 1)), "text/plain", max)).toBe(true);
    // A four-byte character is two units, as String.length counts it.
    expect(textFileTooLong(bytes("😀".repeat(max / 2)), "text/plain", max)).toBe(false);
    expect(textFileTooLong(bytes(`${"😀".repeat(max / 2)}a`), "text/plain", max)).toBe(true);
    // A byte-order mark is not text.
    expect(textFileTooLong(bytes(`\uFEFF${"€".repeat(max)}`), "text/plain", max)).toBe(false);
    // Past three bytes per unit nothing is decoded: not even bytes that are not UTF-8 pass.
    expect(textFileTooLong(new Uint8Array(3 * max + 4).fill(0xff), "text/plain", max)).toBe(true);
    // HTML and PDF shrink when their text is extracted: measured after extraction, not here.
    expect(textFileTooLong(bytes("<p>a</p>".repeat(max)), "text/html", max)).toBe(false);
    expect(textFileTooLong(new Uint8Array(10 * max), "application/pdf", max)).toBe(false);
  });

  it("reads a PDF page by page and abandons a compression bomb as soon as its text passes the limit", async () => {
    expect(await extractText(makePdf([["first page"], ["second page"]]), "application/pdf")).toBe("first page\n\nsecond page");
    const started = performance.now();
    await expect(extractText(makeCompressionBombPdf(), "application/pdf", { maxTextChars: 100_000 })).rejects.toThrow(PayloadTooLargeError);
    // Reading the whole 20 MB stream takes over ten seconds; stopping at the limit, well under a few.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
