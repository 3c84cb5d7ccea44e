import { deflateSync } from "node:zlib";

/**
 * A tiny generator of valid PDF 1.4 files: one page per entry of `pages`, each line of text drawn
 * with the standard Helvetica font. The cross-reference table is computed from real byte offsets,
 * so strict readers (pdf.js, which unpdf wraps) accept the file without falling back to repair.
 *
 * Text must be printable ASCII: the content stream uses literal strings in the font's built-in
 * encoding, and keeping to ASCII makes one character one byte.
 */
export function makePdf(pages: readonly (readonly string[])[]): Uint8Array {
  if (pages.length === 0) throw new RangeError("a PDF needs at least one page");
  for (const line of pages.flat()) {
    if (!/^[\x20-\x7e]*$/.test(line)) throw new RangeError(`makePdf takes printable ASCII only: ${JSON.stringify(line)}`);
  }

  // Object numbers: 1 catalog, 2 page tree, 3 font, then (page, contents) pairs.
  const pageObject = (i: number) => 4 + i * 2;
  const contentObject = (i: number) => 5 + i * 2;
  const objects: string[] = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    `<< /Type /Pages /Kids [${pages.map((_, i) => `${pageObject(i)} 0 R`).join(" ")}] /Count ${pages.length} >>`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
  ];
  pages.forEach((lines, i) => {
    objects.push(
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents ${contentObject(i)} 0 R >>`,
    );
    const stream = ["BT", "/F1 12 Tf", "16 TL", "72 720 Td", ...lines.map((l) => `(${escapePdfString(l)}) Tj T*`), "ET"].join("\n");
    objects.push(`<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`);
  });

  // Header with a binary comment line, as the spec recommends for files containing binary data.
  let out = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xrefOffset = out.length;
  // Each xref entry is exactly 20 bytes: 10-digit offset, space, 5-digit generation, space, flag, CRLF-equivalent " \n".
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) out += `${String(offset).padStart(10, "0")} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xrefOffset}\n%%EOF\n`;
  // latin1 keeps one byte per character, so the offsets above are byte offsets.
  return new Uint8Array(Buffer.from(out, "latin1"));
}

function escapePdfString(text: string): string {
  return text.replace(/[\\()]/g, (ch) => `\\${ch}`);
}

/**
 * A compression bomb: one page whose FlateDecode content stream is a few tens of kilobytes on the
 * wire and inflates to `inflatedBytes` of text-showing operators (about 20 MB by default). Valid
 * PDF, so a reader that trusts it decompresses and lays out every operator.
 */
export function makeCompressionBombPdf(inflatedBytes = 20 * 1024 * 1024): Uint8Array {
  // Each line its own text object at the same spot on the page: readers skip text drawn off the page.
  const line = "BT /F1 12 Tf 72 720 Td (All work and no play makes a dull upload) Tj ET\n";
  return onePageDeflatedPdf(line.repeat(Math.ceil(inflatedBytes / line.length)));
}

/**
 * A valid one-page PDF 1.4 (Helvetica, a real cross-reference table from byte offsets) whose
 * content stream is `content`, FlateDecode-compressed at level 9 — the smallest file for the same
 * inflated size, as an attacker would send it.
 */
export function onePageDeflatedPdf(content: string): Uint8Array {
  const deflated = deflateSync(Buffer.from(content, "latin1"), { level: 9 });
  const head = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";
  const objects = [
    Buffer.from("<< /Type /Catalog /Pages 2 0 R >>", "latin1"),
    Buffer.from("<< /Type /Pages /Kids [4 0 R] /Count 1 >>", "latin1"),
    Buffer.from("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>", "latin1"),
    Buffer.from("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>", "latin1"),
    Buffer.concat([
      Buffer.from(`<< /Length ${deflated.length} /Filter /FlateDecode >>\nstream\n`, "latin1"),
      deflated,
      Buffer.from("\nendstream", "latin1"),
    ]),
  ];
  const chunks: Buffer[] = [Buffer.from(head, "latin1")];
  let size = chunks[0]!.length;
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(size);
    const object = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`, "latin1"), body, Buffer.from("\nendobj\n", "latin1")]);
    chunks.push(object);
    size += object.length;
  });
  let tail = `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) tail += `${String(offset).padStart(10, "0")} 00000 n \n`;
  tail += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${size}\n%%EOF\n`;
  chunks.push(Buffer.from(tail, "latin1"));
  return new Uint8Array(Buffer.concat(chunks));
}
