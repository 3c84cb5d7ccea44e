import { randomBytes, timingSafeEqual } from "node:crypto";

/** How long a console session lives without signing in again. */
export const SESSION_TTL_MS = 8 * 60 * 60 * 1000;
export const SESSION_COOKIE = "fence_console";
/** The sign-in form's own CSRF token (no session yet): a cookie the form must echo. */
export const SIGN_IN_COOKIE = "fence_console_signin";

/**
 * A console session, as its cookie carries it. Never the key: a tenant session holds the key's
 * SHA-256 (which authenticates nothing by itself), and every request verifies it again, so a
 * revoked, expired or rotated-out key ends its sessions at their next request. An admin session
 * holds a hash of the admin key it signed in with, so changing FENCE_ADMIN_KEY ends them.
 */
export interface ConsoleSession {
  /** Random: what a sign-out records (ended-sessions.ts), so a copy of the cookie ends with it. */
  id: string;
  kind: "tenant" | "admin";
  keyHash: string;
  /** Echoed by every form of the session (a hidden field), compared in constant time. */
  csrf: string;
  expiresAt: number;
}

export function newSessionId(): string {
  return randomBytes(18).toString("base64url");
}

export function newCsrfToken(): string {
  return randomBytes(24).toString("base64url");
}

/**
 * The session a cookie's value holds, or undefined when it is not one or has expired. The value
 * comes from Hono's signed cookies (HMAC-SHA256 under the server's console secret), so only the
 * server can have written it; this checks its shape and its expiry. Signed, not encrypted: what
 * it holds (a key's hash, a random token, a time) is no secret from whoever holds the cookie.
 */
export function parseSession(value: string | false | undefined, now = Date.now()): ConsoleSession | undefined {
  if (!value) return undefined;
  let session: Partial<ConsoleSession>;
  try {
    session = JSON.parse(value) as Partial<ConsoleSession>;
  } catch {
    return undefined;
  }
  const { id, kind, keyHash, csrf, expiresAt } = session;
  if (typeof id !== "string" || (kind !== "tenant" && kind !== "admin") || typeof keyHash !== "string" || typeof csrf !== "string" || typeof expiresAt !== "number") return undefined;
  if (expiresAt <= now) return undefined;
  return { id, kind, keyHash, csrf, expiresAt };
}

/** Constant-time equality of two tokens (a CSRF field and the session's). */
export function tokensEqual(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
