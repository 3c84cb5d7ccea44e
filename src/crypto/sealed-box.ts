/**
 * Fence's one ciphertext format (issue 20, encryption at rest): AES-256-GCM under a tenant's data
 * key, with where the value lives — tenant, table, column, row — bound in as additional
 * authenticated data, so a ciphertext copied into another tenant's row, another column or another
 * row fails to open instead of decrypting there.
 *
 *   byte 0      format version (1)
 *   bytes 1-4   the data key's version, big-endian (which of the tenant's keys sealed it: rotation)
 *   bytes 5-16  a random 96-bit nonce
 *   bytes 17-   the ciphertext, then the 128-bit GCM tag
 *
 * The header (bytes 0-16) is authenticated too. Two implementations give the same bytes:
 * node:crypto on Node (synchronous, the fastest there) and WebCrypto on Workers; a test seals with
 * each and opens with the other. Random nonces are safe far beyond a tenant's row count: a 96-bit
 * nonce may be drawn 2^32 times per key before the collision bound NIST sets is reached, and a data
 * key is rotated long before.
 */

export const SEALED_FORMAT_VERSION = 1;
const HEADER_BYTES = 1 + 4 + 12;
const TAG_BYTES = 16;
export const DATA_KEY_BYTES = 32;

/** Where a sealed value lives: all four must match for it to open. */
export interface SealedPlace {
  tenantId: string;
  table: string;
  column: string;
  /** The row's stable id (for a chunk, its id; for a key-value entry, its key). */
  rowId: string;
}

/** A value that failed to open: tampered with, moved, or sealed under another key. Never says which. */
export class SealedBoxError extends Error {
  constructor(reason = "sealed value failed authentication") {
    super(reason);
    this.name = "SealedBoxError";
  }
}

/** Seals and opens under one raw 256-bit data key; each implementation holds its own key form. */
export interface SealedBoxCipher {
  seal(plaintext: Uint8Array, place: SealedPlace, keyVersion: number): Promise<Uint8Array>;
  open(sealed: Uint8Array, place: SealedPlace): Promise<Uint8Array>;
}

const encoder = new TextEncoder();

/**
 * The additional authenticated data: the header, then each field of the place length-prefixed
 * (so `("a", "bc")` and `("ab", "c")` differ), under a label naming this use.
 */
export function associatedData(header: Uint8Array, place: SealedPlace): Uint8Array {
  const fields = ["fence/sealed-box/v1", place.tenantId, place.table, place.column, place.rowId].map((f) => encoder.encode(f));
  const out = new Uint8Array(header.length + fields.reduce((n, f) => n + 4 + f.length, 0));
  out.set(header, 0);
  let at = header.length;
  const view = new DataView(out.buffer);
  for (const field of fields) {
    view.setUint32(at, field.length);
    out.set(field, at + 4);
    at += 4 + field.length;
  }
  return out;
}

export function header(keyVersion: number, nonce: Uint8Array): Uint8Array {
  if (!Number.isInteger(keyVersion) || keyVersion < 0 || keyVersion > 0xffffffff) throw new RangeError(`key version out of range: ${keyVersion}`);
  const out = new Uint8Array(HEADER_BYTES);
  out[0] = SEALED_FORMAT_VERSION;
  new DataView(out.buffer).setUint32(1, keyVersion);
  out.set(nonce, 5);
  return out;
}

/** The parts of a sealed value, checked for shape only (authenticity is the cipher's job). */
export function parseSealed(sealed: Uint8Array): { header: Uint8Array; nonce: Uint8Array; body: Uint8Array; keyVersion: number } {
  if (sealed.length < HEADER_BYTES + TAG_BYTES || sealed[0] !== SEALED_FORMAT_VERSION) throw new SealedBoxError("not a sealed value of a known format");
  return {
    header: sealed.subarray(0, HEADER_BYTES),
    nonce: sealed.subarray(5, HEADER_BYTES),
    body: sealed.subarray(HEADER_BYTES),
    keyVersion: new DataView(sealed.buffer, sealed.byteOffset).getUint32(1),
  };
}

/** Which data key version sealed a value, without opening it (to pick the key, or to find rows to re-encrypt). */
export function sealedKeyVersion(sealed: Uint8Array): number {
  return parseSealed(sealed).keyVersion;
}

function checkKey(key: Uint8Array): void {
  if (key.length !== DATA_KEY_BYTES) throw new RangeError(`a data key is ${DATA_KEY_BYTES} bytes, got ${key.length}`);
}

type WebCryptoKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

/** WebCrypto (Workers, browsers, and Node too): the key imported once, non-extractable. */
export class WebCryptoSealedBox implements SealedBoxCipher {
  private constructor(private readonly key: WebCryptoKey) {}

  static async create(rawKey: Uint8Array): Promise<WebCryptoSealedBox> {
    checkKey(rawKey);
    const key = await crypto.subtle.importKey("raw", rawKey as Uint8Array<ArrayBuffer>, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
    return new WebCryptoSealedBox(key);
  }

  async seal(plaintext: Uint8Array, place: SealedPlace, keyVersion: number): Promise<Uint8Array> {
    const head = header(keyVersion, crypto.getRandomValues(new Uint8Array(12)));
    const body = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: head.subarray(5) as Uint8Array<ArrayBuffer>, additionalData: associatedData(head, place) as Uint8Array<ArrayBuffer>, tagLength: 128 },
      this.key,
      plaintext as Uint8Array<ArrayBuffer>,
    );
    const out = new Uint8Array(head.length + body.byteLength);
    out.set(head, 0);
    out.set(new Uint8Array(body), head.length);
    return out;
  }

  async open(sealed: Uint8Array, place: SealedPlace): Promise<Uint8Array> {
    const parts = parseSealed(sealed);
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: parts.nonce as Uint8Array<ArrayBuffer>, additionalData: associatedData(parts.header, place) as Uint8Array<ArrayBuffer>, tagLength: 128 },
        this.key,
        parts.body as Uint8Array<ArrayBuffer>,
      );
      return new Uint8Array(plain);
    } catch {
      throw new SealedBoxError();
    }
  }
}
