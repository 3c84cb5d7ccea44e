import { onePageDeflatedPdf } from "../../../test/support/make-pdf.js";

/**
 * A PDF compression bomb: one page whose content stream is FlateDecode-compressed text that
 * inflates about 300-fold (~70 KB on the wire, ~20 MB once a parser inflates it). It is a valid
 * PDF 1.4 file, built by test/support/make-pdf.ts (a real cross-reference table from byte
 * offsets), so a strict reader parses it instead of rejecting it early: the cost
 * a parser pays is the inflation and the text extraction, which is what the attack is about.
 */
export function makePdfBomb(inflatedBytes = 20_000_000): Uint8Array {
  return onePageDeflatedPdf(contentStream(inflatedBytes));
}

/**
 * Lines of shown text: the extracted text is as large as the inflated stream, so the text limit
 * can only refuse it after the parse — unless the parse itself is bounded, which is the fix.
 * Each line varies a little so the stream is not a single repeated byte (which some inflaters
 * and extractors special-case) yet still compresses well.
 */
function contentStream(bytes: number): string {
  const lines: string[] = ["BT", "/F1 12 Tf", "16 TL", "72 720 Td"];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line = `(quarterly figures ${i % 2} for the board) Tj T*`;
    lines.push(line);
    size += line.length + 1;
  }
  lines.push("ET");
  return lines.join("\n");
}
