import type { IncomingMessage } from "node:http";
import { RequestTimeoutError } from "../core/errors.js";

/** What to do once a body proves large: wait for a place, then say how long the rest may take. */
export interface LargeBody {
  /** Bodies over this many bytes are large. */
  overBytes: number;
  /** Awaited once, before more than `overBytes` are read; resolves to the time left to read the body, in ms. */
  admit(declaredBytes: number | undefined): Promise<number>;
  /**
   * Called with each piece of the body read once admitted; answers how long to leave the rest
   * unread before reading on, in ms (flow/read-pace.ts: a body yields to other tenants' requests).
   */
  pace?(bytes: number): number;
}

/**
 * A request's body as one buffer, copied once. `Request.arrayBuffer()` copies a body twice
 * (joined, then copied out) on Node; for a 10 MB upload that is ~25 ms of the event loop's time,
 * paid by every tenant waiting behind it. Sized from Content-Length when the request declares one
 * (the body limit has already checked it, and Node's parser ends the body at it).
 *
 * With `large`, a body is large when it declares more than `overBytes`, or, of unknown length,
 * once more than that has arrived: `admit` is awaited before it is read (further), and a body not
 * fully arrived when its time is up is refused (408) and left unread; while it is read, `pace`
 * may hold it back between pieces.
 */
export async function readRequestBytes(request: Request, large?: LargeBody, incoming?: NodeIncoming): Promise<Uint8Array> {
  const declared = declaredLength(request);
  // Not once something else has read from it (its web stream, say): the direct path would never see the end.
  if (incoming && !incoming.readableDidRead && declared !== undefined && !request.headers.has("transfer-encoding")) {
    return readIncomingBytes(incoming, declared, large);
  }
  if (!request.body) return new Uint8Array(0);
  let buffer = new Uint8Array(declared ?? 64 * 1024);
  let size = 0;
  const reader = request.body.getReader();
  let admitted = large === undefined;
  let timer: NodeJS.Timeout | undefined;
  let late: Promise<never> | undefined;
  const admit = async () => {
    admitted = true;
    const withinMs = await large!.admit(declared);
    late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RequestTimeoutError(Math.round(withinMs / 1000))), withinMs);
    });
    late.catch(() => undefined); // raced below while reading; unobserved once the body is in
  };
  try {
    if (!admitted && declared !== undefined && declared > large!.overBytes) await admit();
    for (;;) {
      const { done, value } = await (late ? Promise.race([reader.read(), late]) : reader.read());
      if (done) break;
      if (size + value.length > buffer.length) {
        const grown = new Uint8Array(Math.max(size + value.length, buffer.length * 2));
        grown.set(buffer.subarray(0, size));
        buffer = grown;
      }
      buffer.set(value, size);
      size += value.length;
      if (!admitted && size > large!.overBytes) await admit();
      if (admitted && large?.pace) await holdBack(large.pace(value.length), late);
    }
  } catch (error) {
    await reader.cancel().catch(() => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return size === buffer.length ? buffer : buffer.subarray(0, size);
}

/** Waits `ms` (no timer when 0), or rejects with `late` when the body's time runs out first. */
async function holdBack(ms: number, late: Promise<never> | undefined): Promise<void> {
  if (ms <= 0) return;
  const wait = new Promise<void>((resolve) => setTimeout(resolve, ms));
  await (late ? Promise.race([wait, late]) : wait);
}

/**
 * Node's own request (`c.env.incoming` under @hono/node-server), read directly when the body's
 * length is declared: its web stream (`request.body`) copies every chunk once more (Node's adapter
 * detaches each from the socket's pool) and resolves a promise per chunk, which for a 10 MB upload
 * was a fifth of the event loop's time while the body arrived, and more garbage to collect.
 */
export type NodeIncoming = Pick<IncomingMessage, "on" | "off" | "pause" | "resume" | "readableEnded" | "readableDidRead" | "destroyed">;

/** The Node request of a Hono context's env, if it is one (the Worker's env holds a stand-in without a stream). */
export function nodeIncomingOf(env: unknown): NodeIncoming | undefined {
  const incoming = (env as { incoming?: Partial<NodeIncoming> } | undefined)?.incoming;
  return typeof incoming?.on === "function" && typeof incoming.pause === "function" ? (incoming as NodeIncoming) : undefined;
}

/**
 * Whether a request carries a body, judged from its method and headers. On Node, `request.body`
 * must not be touched to find out: it starts reading the body into a web stream.
 */
export function carriesBody(request: Request, incoming: NodeIncoming | undefined): boolean {
  if (request.method === "GET" || request.method === "HEAD") return false;
  if (!incoming) return request.body !== null;
  return request.headers.has("transfer-encoding") || (declaredLength(request) ?? 0) > 0;
}

/** `readRequestBytes` on Node's request: the same rules, `declared` bytes into one buffer. */
function readIncomingBytes(incoming: NodeIncoming, declared: number, large: LargeBody | undefined): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    // Only a large body is paced, and only once admitted: it is not listened to before.
    const paced = large?.pace !== undefined && declared > large.overBytes;
    const buffer = new Uint8Array(declared);
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    let held: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(held);
      incoming.off("data", onData);
      incoming.off("end", onEnd);
      incoming.off("error", onError);
      incoming.off("close", onClose);
      outcome();
    };
    // Left unread (paused) on a refusal: Node's server discards the rest once the response is sent.
    const fail = (error: unknown) =>
      finish(() => {
        incoming.pause();
        reject(error);
      });
    const onData = (chunk: Buffer) => {
      // Node's parser ends the body at its Content-Length; more would be a bug, not a client's doing.
      if (size + chunk.length > buffer.length) return fail(new Error(`request body longer than its Content-Length (${declared} bytes)`));
      buffer.set(chunk, size);
      size += chunk.length;
      const wait = paced ? large!.pace!(chunk.length) : 0;
      if (wait > 0) {
        // Unread meanwhile: TCP holds the sender back.
        incoming.pause();
        held = setTimeout(() => incoming.resume(), wait);
      }
    };
    const onEnd = () => finish(() => resolve(size === buffer.length ? buffer : buffer.subarray(0, size)));
    const onError = (error: Error) => fail(error);
    const onClose = () => {
      if (!incoming.readableEnded) fail(new Error("client closed the connection before its request body ended"));
    };
    // Watched from the start: a client may leave while its body waits for a place.
    incoming.on("error", onError);
    incoming.on("close", onClose);
    if (incoming.destroyed) return onClose();
    const listen = () => {
      incoming.on("data", onData);
      incoming.on("end", onEnd);
      incoming.resume();
    };
    if (!large || declared <= large.overBytes) return listen();
    large.admit(declared).then((withinMs) => {
      if (settled) return;
      timer = setTimeout(() => fail(new RequestTimeoutError(Math.round(withinMs / 1000))), withinMs);
      listen();
    }, fail);
  });
}

/** The body's size as the request declares it (Content-Length), if it does. */
export function declaredLength(request: Request): number | undefined {
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  return Number.isSafeInteger(declared) && declared > 0 ? declared : undefined;
}

/**
 * Hono's per-request body cache as it really is: it holds promises, though typed as Body's
 * methods. The form validator takes `formData` from it when there, else parses `arrayBuffer`.
 */
export function bodyCacheOf(request: { bodyCache: object }): { arrayBuffer?: Promise<ArrayBuffer>; formData?: Promise<FormData> } {
  return request.bodyCache as { arrayBuffer?: Promise<ArrayBuffer>; formData?: Promise<FormData> };
}

/** The bytes as a whole ArrayBuffer of their own (a view into a larger buffer is copied). */
export function wholeBuffer(bytes: Uint8Array): ArrayBuffer {
  return (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer) as ArrayBuffer;
}
