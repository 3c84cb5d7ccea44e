import { convert as htmlToText } from "html-to-text";
import { PayloadTooLargeError, UnprocessableDocumentError, UnsupportedMediaTypeError } from "../core/errors.js";

// Stored text is normalised by one linear scan (see text-scan.ts); re-exported for its callers.
export { normalizeText } from "./text-scan.js";
import { htmlNestsDeeperThan } from "./text-scan.js";

export type SupportedMediaType = "text/plain" | "text/markdown" | "text/html" | "application/pdf";

const BY_EXTENSION: Record<string, SupportedMediaType> = {
  txt: "text/plain",
  text: "text/plain",
  md: "text/markdown",
  markdown: "text/markdown",
  html: "text/html",
  htm: "text/html",
  pdf: "application/pdf",
};

const BY_CONTENT_TYPE: Record<string, SupportedMediaType> = {
  "text/plain": "text/plain",
  "text/markdown": "text/markdown",
  "text/x-markdown": "text/markdown",
  "text/html": "text/html",
  "application/xhtml+xml": "text/html",
  "application/pdf": "application/pdf",
};

/**
 * Decides the media type from the declared content type, falling back to the file extension when
 * the client sent a generic one (browsers and curl often say application/octet-stream).
 */
export function detectMediaType(fileName: string, declaredType: string | undefined): SupportedMediaType {
  // Index arithmetic, not split(): a file name or header may be hundreds of kilobytes long.
  const semicolon = declaredType?.indexOf(";") ?? -1;
  const declared = (semicolon >= 0 ? declaredType!.slice(0, semicolon) : declaredType)?.trim().toLowerCase();
  if (declared && Object.hasOwn(BY_CONTENT_TYPE, declared)) return BY_CONTENT_TYPE[declared]!;
  const extension = fileName.slice(fileName.lastIndexOf(".") + 1).toLowerCase();
  const byExtension = Object.hasOwn(BY_EXTENSION, extension) ? BY_EXTENSION[extension] : undefined;
  if (byExtension && (!declared || declared === "application/octet-stream")) return byExtension;
  throw new UnsupportedMediaTypeError(
    `Unsupported file type ${declared ? `'${declared.slice(0, 100)}'` : `'.${extension.slice(0, 20)}'`}; ` +
      "send plain text, Markdown, HTML or PDF.",
  );
}

/**
 * Whether a plain-text or Markdown file holds more than `maxTextChars` characters (UTF-16 units, as
 * a JSON upload's `text` is counted), judged when it is uploaded: such a file is refused (413) at
 * the door like its JSON twin, instead of being queued, stored and read back only for its job to
 * refuse it. UTF-8 spends one to three bytes on each unit (a four-byte character is two units, a
 * leading byte-order mark none), so only a file between `maxTextChars` and three times that many
 * bytes is decoded to be counted. Other types are measured once their text is extracted.
 */
export function textFileTooLong(bytes: Uint8Array, mediaType: SupportedMediaType, maxTextChars: number): boolean {
  if (mediaType !== "text/plain" && mediaType !== "text/markdown") return false;
  if (bytes.length <= maxTextChars) return false;
  if (bytes.length - UTF8_BOM_BYTES > 3 * maxTextChars) return true;
  return new TextDecoder().decode(bytes).length > maxTextChars;
}

const UTF8_BOM_BYTES = 3;

/**
 * Extracts plain text (Markdown kept as is, for its headings) from an uploaded file. A PDF is read
 * page by page and abandoned (413) as soon as its text passes `maxTextChars`: a compression bomb
 * costs the pages read so far, not its whole inflated size.
 */
export async function extractText(
  bytes: Uint8Array,
  mediaType: SupportedMediaType,
  limits: { maxTextChars?: number } = {},
): Promise<string> {
  const maxTextChars = limits.maxTextChars ?? Number.POSITIVE_INFINITY;
  switch (mediaType) {
    case "application/pdf":
      return extractPdfText(bytes, maxTextChars);
    case "text/html":
      return extractHtmlText(decodeUtf8(bytes));
    default:
      return decodeUtf8(bytes);
  }
}

/** Far deeper than real pages nest; shallow enough for html-to-text's recursion on any stack. */
const MAX_HTML_DEPTH = 512;

function extractHtmlText(html: string): string {
  if (htmlNestsDeeperThan(html, MAX_HTML_DEPTH)) {
    throw new UnprocessableDocumentError(`The HTML nests elements more than ${MAX_HTML_DEPTH} levels deep.`);
  }
  try {
    return htmlToText(html, {
      wordwrap: false,
      selectors: [
        { selector: "a", options: { ignoreHref: true } },
        { selector: "img", format: "skip" },
        { selector: "h1", options: { uppercase: false } },
        { selector: "h2", options: { uppercase: false } },
        { selector: "h3", options: { uppercase: false } },
        { selector: "table", options: { uppercaseHeaderCells: false } },
      ],
    });
  } catch (error) {
    // html-to-text recurses once per element level: a few thousand nested tags overflow the stack.
    if (error instanceof RangeError) throw new UnprocessableDocumentError("The HTML is nested too deeply to be read.");
    throw error;
  }
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new UnprocessableDocumentError("The file is not valid UTF-8 text.");
  }
}

async function extractPdfText(bytes: Uint8Array, maxTextChars: number): Promise<string> {
  if (!startsWith(bytes, "%PDF-")) throw new UnprocessableDocumentError("The file is not a valid PDF.");
  const { getDocumentProxy } = await import("unpdf");
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>> | undefined;
  try {
    // pdf.js takes ownership of the buffer it is given, so it gets a copy.
    pdf = await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0 });
    const pages: string[] = [];
    let total = 0;
    for (let number = 1; number <= pdf.numPages; number++) {
      const text = await pageText(await pdf.getPage(number), maxTextChars - total);
      if (text === undefined) throw new PayloadTooLargeError(maxTextChars, "characters");
      pages.push(text);
      total += text.length + 2;
    }
    return pages.join("\n\n");
  } catch (error) {
    if (error instanceof PayloadTooLargeError) throw error;
    if (error instanceof RangeError) throw new UnprocessableDocumentError("The PDF is too complex to be read.");
    throw new UnprocessableDocumentError(`The PDF could not be read: ${String((error as Error).message).slice(0, 200)}`);
  } finally {
    await pdf?.destroy().catch(() => undefined);
  }
}

type PdfPage = Awaited<ReturnType<Awaited<ReturnType<(typeof import("unpdf"))["getDocumentProxy"]>>["getPage"]>>;

/**
 * One page's text, as unpdf joins it (each item, a line break after an item that ends a line),
 * read as a stream so that a page whose content inflates to megabytes is cancelled once it passes
 * `budget` characters (undefined) instead of being read whole.
 */
async function pageText(page: PdfPage, budget: number): Promise<string | undefined> {
  const reader = page.streamTextContent().getReader();
  const parts: string[] = [];
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const item of (value as { items: { str?: string; hasEOL?: boolean }[] }).items) {
        if (item.str == null) continue;
        const part = item.hasEOL ? `${item.str}\n` : item.str;
        parts.push(part);
        length += part.length;
      }
      if (length > budget) {
        await reader.cancel(new Error("text limit reached")).catch(() => undefined);
        return undefined;
      }
    }
  } finally {
    page.cleanup();
  }
  return parts.join("");
}

function startsWith(bytes: Uint8Array, magic: string): boolean {
  return magic.split("").every((ch, i) => bytes[i] === ch.charCodeAt(0));
}
