import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { NodeSealedBox } from "../../../src/crypto/node-sealed-box.js";
import { SealedBoxError, sealedKeyVersion, WebCryptoSealedBox, type SealedBoxCipher, type SealedPlace } from "../../../src/crypto/sealed-box.js";
import { MasterKeyError, MasterKeyProvider, newDataKey, parseMasterKey } from "../../../src/crypto/key-provider.js";

/**
 * The ciphertext format of encryption at rest (issue 20, groundwork): both implementations give
 * bytes the other opens; a value opens only in the place it was sealed for (tenant, table, column,
 * row) and under its key; any flipped bit fails; and the master key that wraps data keys is refused
 * when it is missing, malformed or plainly not random.
 */

const place: SealedPlace = { tenantId: "6a1f0e0c-1111-4111-8111-000000000001", table: "chunks", column: "text", rowId: "c0ffee00-0000-4000-8000-000000000001" };
const text = new TextEncoder().encode("Acme's secret roadmap: launch in Q3. ünïcødé ✓");

async function implementations(key: Uint8Array): Promise<[string, SealedBoxCipher][]> {
  return [
    ["node:crypto", new NodeSealedBox(key)],
    ["WebCrypto", await WebCryptoSealedBox.create(key)],
  ];
}

describe("sealed box (AES-256-GCM, place bound in)", () => {
  it("opens with either implementation what the other sealed", async () => {
    const key = newDataKey();
    const impls = await implementations(key);
    for (const [, sealer] of impls) {
      for (const [, opener] of impls) {
        const sealed = await sealer.seal(text, place, 7);
        expect(await opener.open(sealed, place)).toEqual(text);
        expect(sealedKeyVersion(sealed)).toBe(7);
      }
    }
  });

  it("seals the same text differently each time (random nonce) and hides it", async () => {
    const box = new NodeSealedBox(newDataKey());
    const a = await box.seal(text, place, 1);
    const b = await box.seal(text, place, 1);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    expect(Buffer.from(a).includes(Buffer.from("roadmap"))).toBe(false);
    expect(a.length).toBe(text.length + 1 + 4 + 12 + 16);
  });

  it("refuses a value moved to another tenant, table, column or row, or opened under another key", async () => {
    const key = newDataKey();
    for (const [name, box] of await implementations(key)) {
      const sealed = await box.seal(text, place, 1);
      const elsewhere: SealedPlace[] = [
        { ...place, tenantId: "6a1f0e0c-1111-4111-8111-000000000002" },
        { ...place, table: "documents" },
        { ...place, column: "title" },
        { ...place, rowId: "c0ffee00-0000-4000-8000-000000000002" },
        // Length-prefixed fields: shifting a character between two fields is another place.
        { ...place, table: "chunk", column: "stext" },
      ];
      for (const other of elsewhere) await expect(box.open(sealed, other), `${name}: ${JSON.stringify(other)}`).rejects.toBeInstanceOf(SealedBoxError);
      const [, stranger] = (await implementations(newDataKey())).find(([n]) => n === name)!;
      await expect(stranger.open(sealed, place)).rejects.toBeInstanceOf(SealedBoxError);
    }
  });

  it("refuses every single flipped bit, the key version in the header included", async () => {
    const box = new NodeSealedBox(newDataKey());
    const sealed = await box.seal(new TextEncoder().encode("short"), place, 3);
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const tampered = Uint8Array.from(sealed);
      tampered[bit >> 3]! ^= 1 << (bit & 7);
      await expect(box.open(tampered, place), `bit ${bit}`).rejects.toBeInstanceOf(SealedBoxError);
    }
    await expect(box.open(sealed.subarray(0, sealed.length - 1), place)).rejects.toBeInstanceOf(SealedBoxError);
    await expect(box.open(new Uint8Array(10), place)).rejects.toBeInstanceOf(SealedBoxError);
  });
});

describe("master key and wrapped data keys", () => {
  const good = randomBytes(32);

  it("accepts 32 random bytes as hex, base64 and URL-safe base64", () => {
    for (const form of [good.toString("hex"), good.toString("base64"), good.toString("base64url"), ` ${good.toString("base64")}\n`]) {
      expect(Buffer.from(parseMasterKey(form)).equals(good)).toBe(true);
    }
  });

  it("refuses a missing, malformed, short or non-random key, saying how to make one", () => {
    const refused = [
      undefined,
      "",
      "not a key!",
      randomBytes(16).toString("base64"),
      randomBytes(33).toString("hex"),
      Buffer.alloc(32, 7).toString("base64"),
      Buffer.from(Array.from({ length: 32 }, (_, i) => i % 8)).toString("hex"),
      Buffer.from("correct horse battery staple 123").toString("base64"),
    ];
    for (const value of refused) {
      expect(() => parseMasterKey(value), String(value)).toThrow(MasterKeyError);
      expect(() => parseMasterKey(value)).toThrow(/openssl rand -base64 32/);
    }
  });

  it("unwraps a data key only for its own tenant, and through a rotation only with the old key configured", async () => {
    const tenant = "6a1f0e0c-1111-4111-8111-000000000001";
    const oldKek = parseMasterKey(randomBytes(32).toString("base64"));
    const newKek = parseMasterKey(randomBytes(32).toString("base64"));
    const before = await MasterKeyProvider.create(oldKek);
    const dataKey = newDataKey();
    const wrapped = await before.wrap(dataKey, tenant);
    expect(Buffer.from(wrapped.wrapped).includes(Buffer.from(dataKey))).toBe(false);
    expect(await before.unwrap(wrapped, tenant)).toEqual(dataKey);
    await expect(before.unwrap(wrapped, "6a1f0e0c-1111-4111-8111-000000000002")).rejects.toBeInstanceOf(SealedBoxError);

    const during = await MasterKeyProvider.create(newKek, [oldKek]);
    expect(during.currentKekId).not.toBe(before.currentKekId);
    expect(await during.unwrap(wrapped, tenant)).toEqual(dataKey);
    const rewrapped = await during.wrap(dataKey, tenant);
    expect(rewrapped.kekId).toBe(during.currentKekId);

    const after = await MasterKeyProvider.create(newKek);
    expect(await after.unwrap(rewrapped, tenant)).toEqual(dataKey);
    await expect(after.unwrap(wrapped, tenant)).rejects.toBeInstanceOf(SealedBoxError);
    // A wrapped key claiming the current key's id but made under the old one still fails.
    await expect(after.unwrap({ ...wrapped, kekId: after.currentKekId }, tenant)).rejects.toBeInstanceOf(SealedBoxError);
  });
});
