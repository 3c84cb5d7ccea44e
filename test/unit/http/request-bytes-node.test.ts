import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { RequestTimeoutError } from "../../../src/core/errors.js";
import { carriesBody, readRequestBytes, type NodeIncoming } from "../../../src/http/request-bytes.js";

/**
 * The direct read of Node's request (request-bytes.ts): the same outcomes as the web-stream read
 * it replaces on Node, including the ways a large body's read ends early. A PassThrough stands in
 * for the IncomingMessage: the same stream events, pause and resume.
 */
const request = (bytes: number, headers: Record<string, string> = {}) =>
  new Request("http://fence.test/v1/documents", { method: "POST", headers: { "content-length": String(bytes), ...headers } });

/** A request whose `body` must never be touched: on Node, touching it starts a second reader. */
const untouchable = (bytes: number) =>
  Object.defineProperty(request(bytes), "body", {
    get() {
      throw new Error("request.body touched");
    },
  });

describe("reading a request body from Node's own request", () => {
  it("reads the declared bytes into one buffer without touching the web body", async () => {
    const incoming = new PassThrough();
    const read = readRequestBytes(untouchable(6), undefined, incoming as unknown as NodeIncoming);
    incoming.write("abc");
    incoming.end("def");
    expect(new TextDecoder().decode(await read)).toBe("abcdef");
  });

  it("waits for a large body's place unread, then reads it", async () => {
    const incoming = new PassThrough();
    let admit!: (ms: number) => void;
    const read = readRequestBytes(untouchable(10), { overBytes: 4, admit: () => new Promise((resolve) => (admit = resolve)) }, incoming as unknown as NodeIncoming);
    incoming.end("0123456789");
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(incoming.readableLength).toBe(10); // still unread while it waits
    admit(5_000);
    expect(new TextDecoder().decode(await read)).toBe("0123456789");
  });

  it("ends with an error, not a hang, when the client leaves while its body waits for a place", async () => {
    const incoming = new PassThrough();
    let admit!: (ms: number) => void;
    const read = readRequestBytes(untouchable(10), { overBytes: 4, admit: () => new Promise((resolve) => (admit = resolve)) }, incoming as unknown as NodeIncoming);
    incoming.destroy();
    await expect(read).rejects.toThrow(/closed the connection/);
    admit(5_000); // the place, given later, finds the read already over
  });

  it("refuses a body still arriving at its deadline (408), leaving the rest unread", async () => {
    const incoming = new PassThrough();
    const read = readRequestBytes(untouchable(10), { overBytes: 4, admit: async () => 50 }, incoming as unknown as NodeIncoming);
    incoming.write("01234");
    await expect(read).rejects.toBeInstanceOf(RequestTimeoutError);
    incoming.write("56789");
    expect(incoming.readableLength).toBe(5);
  });

  it("holds a large body back unread for as long as its pace says, then reads on", async () => {
    const incoming = new PassThrough();
    const paced: number[] = [];
    const pace = (bytes: number) => (paced.push(bytes), paced.length === 1 ? 80 : 0);
    const started = performance.now();
    const read = readRequestBytes(untouchable(10), { overBytes: 4, admit: async () => 5_000, pace }, incoming as unknown as NodeIncoming);
    await new Promise((resolve) => setTimeout(resolve, 5));
    incoming.write("01234");
    await new Promise((resolve) => setTimeout(resolve, 20));
    incoming.end("56789");
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(incoming.readableLength).toBe(5); // held back: the second half waits unread
    expect(new TextDecoder().decode(await read)).toBe("0123456789");
    expect(performance.now() - started).toBeGreaterThanOrEqual(80);
    expect(paced).toEqual([5, 5]);
  });

  it("never paces a body that is not large", async () => {
    const incoming = new PassThrough();
    const pace = () => {
      throw new Error("paced a small body");
    };
    const read = readRequestBytes(untouchable(4), { overBytes: 4, admit: async () => 5_000, pace }, incoming as unknown as NodeIncoming);
    incoming.end("0123");
    expect(new TextDecoder().decode(await read)).toBe("0123");
  });

  it("paces a body read from its web stream too (no Node request: chunked, or on Workers)", async () => {
    const pieces = ["01234", "56789"];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const piece = pieces.shift();
        if (piece === undefined) controller.close();
        else controller.enqueue(new TextEncoder().encode(piece));
      },
    });
    const chunked = new Request("http://fence.test/v1/documents", { method: "POST", body, duplex: "half" } as RequestInit);
    const paced: number[] = [];
    const started = performance.now();
    const bytes = await readRequestBytes(chunked, { overBytes: 4, admit: async () => 5_000, pace: (n) => (paced.push(n), 60) });
    expect(new TextDecoder().decode(bytes)).toBe("0123456789");
    // Admitted once the first piece passed 4 bytes: that piece is paced, and every one after it.
    expect(paced).toEqual([5, 5]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(120);
  });

  it("judges whether there is a body from the headers alone on Node", () => {
    const incoming = new PassThrough() as unknown as NodeIncoming;
    expect(carriesBody(untouchable(3), incoming)).toBe(true);
    expect(carriesBody(untouchable(0), incoming)).toBe(false);
    expect(carriesBody(new Request("http://fence.test/", { method: "GET" }), incoming)).toBe(false);
  });
});
