import { describe, expect, it } from "vitest";
import { boundedMaskedString, MAX_LOG_LINE_BYTES, MAX_LOG_STRING_CHARS } from "../../../src/observability/log-value-bounds.js";
import { createLogger } from "../../../src/observability/logger.js";

function capture() {
  const lines: string[] = [];
  const logger = createLogger("info", { write: (line: string) => void lines.push(line) });
  return { logger, lines };
}

const bytes = (line: string) => Buffer.byteLength(line);

describe("boundedMaskedString", () => {
  it("leaves short text whole (masked)", () => {
    expect(boundedMaskedString("mail maria@example.org")).toBe("mail [email]");
  });

  it("cuts long text to the limit and says how long it was", () => {
    const out = boundedMaskedString("x".repeat(1_000_000));
    expect(out.length).toBeLessThan(MAX_LOG_STRING_CHARS + 40);
    expect(out).toMatch(/…\[cut: 1000000 chars\]$/);
  });

  it.each([0, 1, 7, 20, 500, 1500])("never leaves part of an e-mail address that a cut split (offset %i)", (offset) => {
    // Text that masking shrinks (many addresses), with one address across the point where a
    // naive cut would fall: none of its characters may survive unmasked.
    const filler = Array.from({ length: 400 }, (_, i) => `u${i}@example.org`).join(" ");
    const secret = "wilhelmina.quarterstaff-9@example.org";
    const text = `${filler.slice(0, MAX_LOG_STRING_CHARS - offset)} ${secret} ${"tail ".repeat(2000)}`;
    const out = boundedMaskedString(text);
    for (const part of ["wilhelmina", "quarterstaff", "wilhel"]) expect(out).not.toContain(part);
  });
});

describe("the logger bounds every line", () => {
  it("cuts a multi-megabyte message, field and error message to a line of bounded size", () => {
    const { logger, lines } = capture();
    const huge = "document text ".repeat(300_000);
    logger.info({ field: huge, nested: { deeper: [huge, huge] } }, huge);
    logger.error({ err: new Error(huge) }, "failed");
    logger.error(new Error(huge));
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(bytes(line)).toBeLessThan(MAX_LOG_LINE_BYTES);
  });

  it("bounds a line of escapes: NULs and quotes take six and two bytes each when written", () => {
    const { logger, lines } = capture();
    logger.info({ a: "\u0000".repeat(100_000), b: '"'.repeat(100_000), c: "é".repeat(100_000), d: "\u0001".repeat(100_000) }, "x");
    expect(bytes(lines[0]!)).toBeLessThan(MAX_LOG_LINE_BYTES);
  });

  it("bounds many fields, long arrays, deep nesting and long key names", () => {
    const { logger, lines } = capture();
    const wide = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`field_${i}`, "v".repeat(100)]));
    let deep: Record<string, unknown> = { leaf: "x" };
    for (let i = 0; i < 1_000; i++) deep = { deep };
    const longKey = { ["k".repeat(100_000)]: 1 };
    logger.info({ wide, list: Array.from({ length: 100_000 }, (_, i) => i), deep, longKey }, "x");
    const line = lines[0]!;
    expect(bytes(line)).toBeLessThan(MAX_LOG_LINE_BYTES);
    const parsed = JSON.parse(line) as { wide: Record<string, unknown>; list: unknown[] };
    expect(parsed.wide["[fields_cut]"]).toBeGreaterThan(0);
    expect(parsed.list.at(-1)).toMatch(/more\]$/);
  });

  it("logs bytes by their size, not as one decimal field per byte", () => {
    const { logger, lines } = capture();
    logger.info({ payload: new TextEncoder().encode("a document ".repeat(20_000)), buf: Buffer.from("abc") }, "x");
    expect(JSON.parse(lines[0]!)).toMatchObject({ payload: "[220000 bytes]", buf: "[3 bytes]" });
  });

  it("bounds child bindings too", () => {
    const { logger, lines } = capture();
    logger.child({ who: "x".repeat(1_000_000) }).child({ what: "y".repeat(1_000_000) }).info("hello");
    expect(bytes(lines[0]!)).toBeLessThan(MAX_LOG_LINE_BYTES);
  });

  it("keeps a circular structure loggable", () => {
    const { logger, lines } = capture();
    const loop: Record<string, unknown> = { name: "loop" };
    loop.self = loop;
    logger.info({ loop }, "x");
    expect(JSON.parse(lines[0]!)).toMatchObject({ loop: { name: "loop", self: "[circular]" } });
  });

  it("still replaces a secret-named field whole and keeps numbers, booleans and dates", () => {
    const { logger, lines } = capture();
    logger.info({ password: "hunter2hunter2", count: 3, ok: true, at: new Date(0) }, "x");
    expect(JSON.parse(lines[0]!)).toMatchObject({ password: "[api_key]", count: 3, ok: true, at: "1970-01-01T00:00:00.000Z" });
  });
});
