import { DATA_KEY_BYTES, SealedBoxError, WebCryptoSealedBox, type SealedPlace } from "./sealed-box.js";

/**
 * Envelope encryption (issue 20): each tenant's data key is stored only wrapped by a
 * key-encryption key that never reaches the database. A KeyProvider wraps and unwraps data keys;
 * the built-in one holds the key-encryption key from FENCE_MASTER_KEY, and a KMS (AWS KMS, GCP
 * KMS, Vault transit) fits the same two calls — its key id in `kekId`, the tenant as its
 * encryption context — without anything else changing.
 *
 * The tenant is bound into every wrapped key (additional authenticated data): a wrapped key copied
 * onto another tenant's row does not unwrap there.
 */
export interface WrappedDataKey {
  /** Which key-encryption key wrapped it: rotation rewraps the keys of older ids. */
  kekId: string;
  /** Opaque to Fence: what the provider needs to unwrap. */
  wrapped: Uint8Array;
}

export interface KeyProvider {
  /** The key-encryption key that wraps new data keys. */
  readonly currentKekId: string;
  wrap(dataKey: Uint8Array, tenantId: string): Promise<WrappedDataKey>;
  /** Throws SealedBoxError for a key of another tenant, tampered bytes or an unknown kekId. */
  unwrap(key: WrappedDataKey, tenantId: string): Promise<Uint8Array>;
}

/** A fresh random 256-bit data key (WebCrypto's CSPRNG: the same on Node and Workers). */
export function newDataKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(DATA_KEY_BYTES));
}

/** What FENCE_MASTER_KEY must be, and how to make one; said whenever one is refused. */
export const MASTER_KEY_ADVICE =
  "FENCE_MASTER_KEY must be 32 random bytes, base64- or hex-encoded; make one with `openssl rand -base64 32` " +
  "(or `node -e \"console.log(require('crypto').randomBytes(32).toString('base64'))\"`) and keep it in your secret store, not in the database's backups";

export class MasterKeyError extends Error {
  constructor(problem: string) {
    super(`${problem}. ${MASTER_KEY_ADVICE}.`);
    this.name = "MasterKeyError";
  }
}

/**
 * Parses a master key: 64 hex digits or base64 (standard or URL-safe) of exactly 32 bytes, and
 * refuses keys that are plainly not random — a repeated or counting byte pattern, a passphrase
 * pasted as base64, a key with few distinct bytes (32 random bytes have about 30 distinct values;
 * fewer than 16 happens by chance with probability far below 2^-40).
 */
export function parseMasterKey(value: string | undefined): Uint8Array {
  const text = value?.trim() ?? "";
  if (text === "") throw new MasterKeyError("FENCE_MASTER_KEY is not set");
  let bytes: Uint8Array | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(text)) {
    bytes = Uint8Array.from(text.match(/../g)!.map((h) => parseInt(h, 16)));
  } else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) {
    const standard = text.replaceAll("-", "+").replaceAll("_", "/");
    bytes = Uint8Array.from(atob(standard.padEnd(Math.ceil(standard.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
  }
  if (!bytes) throw new MasterKeyError("FENCE_MASTER_KEY is neither hex nor base64");
  if (bytes.length !== DATA_KEY_BYTES) throw new MasterKeyError(`FENCE_MASTER_KEY decodes to ${bytes.length} bytes, not ${DATA_KEY_BYTES}`);
  if (new Set(bytes).size < 16) throw new MasterKeyError("FENCE_MASTER_KEY is not random (too few distinct bytes)");
  if (isPrintableText(bytes)) throw new MasterKeyError("FENCE_MASTER_KEY decodes to printable text, not random bytes");
  return bytes;
}

/** 32 random bytes are all printable ASCII with probability (95/256)^32 ≈ 2^-46. */
function isPrintableText(bytes: Uint8Array): boolean {
  return bytes.every((b) => b >= 0x20 && b < 0x7f);
}

/** A short public name for a key-encryption key: the first 8 bytes of SHA-256 over a label and the key. */
export async function kekIdOf(kek: Uint8Array): Promise<string> {
  const label = new TextEncoder().encode("fence/kek-id/v1:");
  const input = new Uint8Array(label.length + kek.length);
  input.set(label, 0);
  input.set(kek, label.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input));
  return [...digest.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The built-in provider: data keys wrapped with AES-256-GCM under FENCE_MASTER_KEY, in the sealed
 * box format (the tenant bound in). `previous` keys (FENCE_MASTER_KEY_PREVIOUS during a rotation)
 * still unwrap; only the current one wraps.
 */
export class MasterKeyProvider implements KeyProvider {
  private constructor(
    readonly currentKekId: string,
    private readonly boxes: Map<string, WebCryptoSealedBox>,
  ) {}

  static async create(current: Uint8Array, previous: readonly Uint8Array[] = []): Promise<MasterKeyProvider> {
    const boxes = new Map<string, WebCryptoSealedBox>();
    const currentId = await kekIdOf(current);
    for (const kek of [current, ...previous]) boxes.set(await kekIdOf(kek), await WebCryptoSealedBox.create(kek));
    return new MasterKeyProvider(currentId, boxes);
  }

  async wrap(dataKey: Uint8Array, tenantId: string): Promise<WrappedDataKey> {
    if (dataKey.length !== DATA_KEY_BYTES) throw new RangeError(`a data key is ${DATA_KEY_BYTES} bytes`);
    const wrapped = await this.boxes.get(this.currentKekId)!.seal(dataKey, placeOf(tenantId, this.currentKekId), 0);
    return { kekId: this.currentKekId, wrapped };
  }

  async unwrap(key: WrappedDataKey, tenantId: string): Promise<Uint8Array> {
    const box = this.boxes.get(key.kekId);
    if (!box) throw new SealedBoxError(`no key-encryption key with id ${key.kekId} is configured`);
    return box.open(key.wrapped, placeOf(tenantId, key.kekId));
  }
}

function placeOf(tenantId: string, kekId: string): SealedPlace {
  return { tenantId, table: "tenant_data_keys", column: "wrapped_key", rowId: kekId };
}
