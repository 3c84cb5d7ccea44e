import { convert as htmlToText } from "html-to-text";
import { UnprocessableDocumentError, UnsupportedMediaTypeError } from "../errors.js";

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
  const declared = declaredType?.split(";")[0]?.trim().toLowerCase();
  if (declared && BY_CONTENT_TYPE[declared]) return BY_CONTENT_TYPE[declared];
  const extension = fileName.toLowerCase().split(".").pop() ?? "";
  const byExtension = BY_EXTENSION[extension];
  if (byExtension && (!declared || declared === "application/octet-stream")) return byExtension;
  throw new UnsupportedMediaTypeError(
    `Unsupported file type ${declared ? `'${declared}'` : `'.${extension}'`}; ` +
      "send plain text, Markdown, HTML or PDF.",
  );
}

/** Extracts plain text (Markdown kept as is, for its headings) from an uploaded file. */
export async function extractText(bytes: Uint8Array, mediaType: SupportedMediaType): Promise<string> {
  switch (mediaType) {
    case "application/pdf":
      return extractPdfText(bytes);
    case "text/html":
      return htmlToText(decodeUtf8(bytes), {
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
    default:
      return decodeUtf8(bytes);
  }
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new UnprocessableDocumentError("The file is not valid UTF-8 text.");
  }
}

async function extractPdfText(bytes: Uint8Array): Promise<string> {
  if (!startsWith(bytes, "%PDF-")) throw new UnprocessableDocumentError("The file is not a valid PDF.");
  const { extractText: extractPdf, getDocumentProxy } = await import("unpdf");
  try {
    // pdf.js takes ownership of the buffer it is given, so it gets a copy.
    const pdf = await getDocumentProxy(new Uint8Array(bytes));
    const { text } = await extractPdf(pdf, { mergePages: false });
    return text.join("\n\n");
  } catch (error) {
    throw new UnprocessableDocumentError(`The PDF could not be read: ${(error as Error).message}`);
  }
}

function startsWith(bytes: Uint8Array, magic: string): boolean {
  return magic.split("").every((ch, i) => bytes[i] === ch.charCodeAt(0));
}

/**
 * Text as stored: NUL bytes removed (Postgres text cannot hold them), line endings unified,
 * trailing spaces trimmed. Runs on every document, whatever its source.
 */
export function normalizeText(text: string): string {
  return text
    .replaceAll("\u0000", "")
    .replace(/\r\n?/g, "\n")
    .replace(/[ \t]+\n/g, "\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}
