import { RequestTimeoutError } from "../core/errors.js";

/** What to do once a body proves large: wait for a place, then say how long the rest may take. */
export interface LargeBody {
  /** Bodies over this many bytes are large. */
  overBytes: number;
  /** Awaited once, before more than `overBytes` are read; resolves to the time left to read the body, in ms. */
  admit(declaredBytes: number | undefined): Promise<number>;
}

/**
 * A request's body as one buffer, copied once. `Request.arrayBuffer()` copies a body twice
 * (joined, then copied out) on Node; for a 10 MB upload that is ~25 ms of the event loop's time,
 * paid by every tenant waiting behind it. Sized from Content-Length when the request declares one
 * (the body limit has already checked it, and Node's parser ends the body at it).
 *
 * With `large`, a body is large when it declares more than `overBytes`, or, of unknown length,
 * once more than that has arrived: `admit` is awaited before it is read (further), and a body not
 * fully arrived when its time is up is refused (408) and left unread.
 */
export async function readRequestBytes(request: Request, large?: LargeBody): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array(0);
  const declared = declaredLength(request);
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
    }
  } catch (error) {
    await reader.cancel().catch(() => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return size === buffer.length ? buffer : buffer.subarray(0, size);
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
