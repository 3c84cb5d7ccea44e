import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { KeyEnvironment } from "../core/tenant-context.js";

/**
 * API key format: `fence_<env>_<40 base62 chars>` (~238 bits of entropy). Keys are random, not
 * passwords, so a single SHA-256 is the right storage hash (as GitHub and Stripe do): it cannot be
 * brute-forced, and lookup by hash is one indexed equality.
 */
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SECRET_LENGTH = 40;
const KEY_PATTERN = /^fence_(prod|test|sandbox)_[0-9A-Za-z]{40}$/;
const PREFIX_SECRET_CHARS = 6;

export interface GeneratedKey {
  key: string;
  prefix: string;
  hash: string;
}

export function generateApiKey(environment: KeyEnvironment): GeneratedKey {
  // Rejection sampling keeps every character uniformly likely (256 is not a multiple of 62).
  let secret = "";
  while (secret.length < SECRET_LENGTH) {
    for (const byte of randomBytes(64)) {
      if (byte < 248 && secret.length < SECRET_LENGTH) secret += BASE62[byte % 62];
    }
  }
  const key = `fence_${environment}_${secret}`;
  return { key, prefix: keyPrefix(key), hash: hashApiKey(key) };
}

/** `fence_<env>_` plus the first characters of the secret: enough to tell keys apart, not to use one. */
export function keyPrefix(key: string): string {
  return key.slice(0, key.lastIndexOf("_") + 1 + PREFIX_SECRET_CHARS);
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** Cheap syntactic check before any database work; malformed keys get the same 401 as wrong ones. */
export function looksLikeApiKey(candidate: string): boolean {
  return KEY_PATTERN.test(candidate);
}

/** Constant-time comparison of two secrets of any length (compares their digests). */
export function secretsEqual(a: string, b: string): boolean {
  const da = createHash("sha256").update(a).digest();
  const db = createHash("sha256").update(b).digest();
  return timingSafeEqual(da, db);
}

/** Extracts the token from `Authorization: Bearer <token>`; undefined when absent or malformed. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer ([^\s]+)$/.exec(header.trim());
  return match?.[1];
}
