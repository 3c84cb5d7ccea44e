import { describe, expect, it } from "vitest";
import { UnprocessableDocumentError, UnsupportedMediaTypeError } from "../../src/errors.js";
import { detectMediaType, extractText, normalizeText } from "../../src/ingest/parse-document.js";

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
});
