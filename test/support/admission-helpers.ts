import { createConnection } from "node:net";
import { expect } from "vitest";
import type { ErrorBodyWith } from "./api-types.js";

/**
 * Helpers for the request-admission suites: where the shared Redis is, what a refusal must look
 * like (status, body, headers), and reading a streamed chat part of the way.
 */

/** The Redis the shared-counter tests use: REDIS_URL, else Redis's conventional local address. */
export const TEST_REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** True when something accepts TCP connections at the Redis URL's host and port (checked once per file). */
export function redisReachable(url = TEST_REDIS_URL, timeoutMs = 1000): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port || 6379) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** A unique plan name (plans are global rows shared by every suite on one Postgres). */
export function uniquePlanName(label: string): string {
  return `adm-${label}-${Math.random().toString(36).slice(2, 10)}`;
}

/** A 429 or 503 refusal; a 429's details name the limit and the wait. */
export type RefusalBody = ErrorBodyWith<{ reason?: string; retry_after_seconds?: number } | undefined>;

/**
 * Asserts a 429 with the machine-readable reason, a Retry-After of at least one second that
 * matches the body, and returns the body for further checks.
 */
export async function expectRateLimited(res: Response, reason: "rate_limit" | "token_limit" | "concurrency_limit"): Promise<RefusalBody> {
  const body = (await res.json()) as RefusalBody;
  expect({ status: res.status, code: body.error.code, reason: body.error.details?.reason }).toEqual({
    status: 429,
    code: "rate_limited",
    reason,
  });
  const retryAfter = Number(res.headers.get("retry-after"));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(body.error.details?.retry_after_seconds).toBe(retryAfter);
  expect(body.error.request_id).toBe(res.headers.get("x-request-id"));
  return body;
}

/** Asserts the 503 a saturated instance sheds with. */
export async function expectOverloaded(res: Response): Promise<void> {
  const body = (await res.json()) as RefusalBody;
  expect({ status: res.status, code: body.error.code }).toEqual({ status: 503, code: "overloaded" });
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
}

/** Reads a streamed response until `marker` has arrived; returns the reader so the caller can finish or abandon it. */
export async function readUntil(res: Response, marker: string): Promise<ReadableStreamDefaultReader<Uint8Array>> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let received = "";
  while (!received.includes(marker)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before "${marker}" arrived: ${received}`);
    received += decoder.decode(value, { stream: true });
  }
  return reader;
}

/** Drains a reader to its end. */
export async function drain(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  for (;;) if ((await reader.read()).done) return;
}

/** Waits until `count()` reaches `n` (e.g. chat requests the fake provider has received). */
export async function waitForCount(count: () => number, n: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (count() < n) {
    if (Date.now() > deadline) throw new Error(`expected ${n}, still ${count()} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A long answer so a slowed stream stays open while the test looks at what is in flight. */
export const LONG_ANSWER = `${Array.from({ length: 30 }, (_, i) => `word${i}`).join(" ")} [1]`;
