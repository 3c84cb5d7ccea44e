import { randomBytes } from "node:crypto";

/**
 * A multipart/form-data body built by hand, byte for byte. FormData would do for ordinary uploads,
 * but the hostile ones (80,000 parts, a 300,000-character filename) must reach the server exactly
 * as written, and building them up front keeps the eval's own encoding work out of the window
 * in which the victim is measured.
 */
export interface MultipartField {
  name: string;
  value: string | Uint8Array;
  /** Makes the part a file upload. */
  filename?: string;
  contentType?: string;
}

export function multipartBody(fields: readonly MultipartField[]): { body: Uint8Array; contentType: string } {
  const boundary = `fence-eval-${randomBytes(8).toString("hex")}`;
  const parts: Buffer[] = [];
  for (const field of fields) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${field.name}"`;
    if (field.filename !== undefined) head += `; filename="${field.filename}"`;
    head += "\r\n";
    if (field.contentType) head += `Content-Type: ${field.contentType}\r\n`;
    parts.push(Buffer.from(`${head}\r\n`, "utf8"), Buffer.from(field.value), Buffer.from("\r\n", "utf8"));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`, "utf8"));
  return { body: new Uint8Array(Buffer.concat(parts)), contentType: `multipart/form-data; boundary=${boundary}` };
}
