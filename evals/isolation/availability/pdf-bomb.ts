import { deflateSync } from "node:zlib";

/**
 * A PDF compression bomb: one page whose content stream is FlateDecode-compressed text that
 * inflates about 300-fold (~70 KB on the wire, ~20 MB once a parser inflates it). It is a valid
 * PDF 1.4 file, built the way test/support/make-pdf.ts builds its files (a real cross-reference
 * table from byte offsets), so a strict reader parses it instead of rejecting it early: the cost
 * a parser pays is the inflation and the text extraction, which is what the attack is about.
 */
export function makePdfBomb(inflatedBytes = 20_000_000): Uint8Array {
  const stream = Buffer.from(contentStream(inflatedBytes), "latin1");
  // Level 9: the smallest file for the same inflated size, as an attacker would send.
  const compressed = deflateSync(stream, { level: 9 });
  const objects: Buffer[] = [
    Buffer.from("<< /Type /Catalog /Pages 2 0 R >>", "latin1"),
    Buffer.from("<< /Type /Pages /Kids [4 0 R] /Count 1 >>", "latin1"),
    Buffer.from("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>", "latin1"),
    Buffer.from("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>", "latin1"),
    Buffer.concat([
      Buffer.from(`<< /Length ${compressed.length} /Filter /FlateDecode >>\nstream\n`, "latin1"),
      compressed,
      Buffer.from("\nendstream", "latin1"),
    ]),
  ];

  const parts: Buffer[] = [Buffer.from("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "latin1")];
  let length = parts[0]!.length;
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(length);
    const object = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`, "latin1"), body, Buffer.from("\nendobj\n", "latin1")]);
    parts.push(object);
    length += object.length;
  });
  let trailer = `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) trailer += `${String(offset).padStart(10, "0")} 00000 n \n`;
  trailer += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${length}\n%%EOF\n`;
  parts.push(Buffer.from(trailer, "latin1"));
  return new Uint8Array(Buffer.concat(parts));
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
