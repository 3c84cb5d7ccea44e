import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { associatedData, DATA_KEY_BYTES, header, parseSealed, SealedBoxError, type SealedBoxCipher, type SealedPlace } from "./sealed-box.js";

/**
 * The sealed-box format (sealed-box.ts) with node:crypto: synchronous OpenSSL calls, no promise or
 * key import per value, so sealing a document's chunks costs microseconds each. Gives the same
 * bytes as WebCryptoSealedBox (tested both ways), which the Worker uses. Node only.
 */
export class NodeSealedBox implements SealedBoxCipher {
  private readonly key: Buffer;

  constructor(rawKey: Uint8Array) {
    if (rawKey.length !== DATA_KEY_BYTES) throw new RangeError(`a data key is ${DATA_KEY_BYTES} bytes, got ${rawKey.length}`);
    this.key = Buffer.from(rawKey);
  }

  sealSync(plaintext: Uint8Array, place: SealedPlace, keyVersion: number): Uint8Array {
    const head = header(keyVersion, randomBytes(12));
    const cipher = createCipheriv("aes-256-gcm", this.key, head.subarray(5), { authTagLength: 16 });
    cipher.setAAD(associatedData(head, place));
    return bytesOf(Buffer.concat([head, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]));
  }

  openSync(sealed: Uint8Array, place: SealedPlace): Uint8Array {
    const parts = parseSealed(sealed);
    const tagAt = parts.body.length - 16;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, parts.nonce, { authTagLength: 16 });
      decipher.setAAD(associatedData(parts.header, place));
      decipher.setAuthTag(parts.body.subarray(tagAt));
      return bytesOf(Buffer.concat([decipher.update(parts.body.subarray(0, tagAt)), decipher.final()]));
    } catch {
      throw new SealedBoxError();
    }
  }

  async seal(plaintext: Uint8Array, place: SealedPlace, keyVersion: number): Promise<Uint8Array> {
    return this.sealSync(plaintext, place, keyVersion);
  }

  async open(sealed: Uint8Array, place: SealedPlace): Promise<Uint8Array> {
    return this.openSync(sealed, place);
  }
}

/** Plain Uint8Array, as WebCrypto returns: callers need not know which implementation sealed. */
function bytesOf(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
}
