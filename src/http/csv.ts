/**
 * RFC 4180 CSV: a field with a comma, quote, CR or LF is quoted and its quotes doubled; lines end
 * in CRLF. A text field that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR at
 * the start) is prefixed with `'` — names in a showback export are data, never code. Numbers are
 * written as they are.
 */
export function toCsv(header: readonly string[], rows: readonly (readonly (string | number | null)[])[]): string {
  return [header, ...rows].map((row) => row.map(csvField).join(",")).join("\r\n") + "\r\n";
}

function csvField(value: string | number | null): string {
  if (value === null) return "";
  if (typeof value === "number") return String(value);
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
