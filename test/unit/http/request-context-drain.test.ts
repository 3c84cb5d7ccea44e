import { Hono } from "hono";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { requestContext } from "../../../src/http/middleware/request-context.js";
import type { AppEnv } from "../../../src/http/types.js";
import { createLogger } from "../../../src/observability/logger.js";

/**
 * Sampled refusal lines: every skipped line is written at last in a "requests repeated" line, also
 * for a kind whose window was still open when the drain ran and after which no request came.
 */
describe("sampled refusal lines", () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it("writes the count of a kind still in its window at the first drain, at a later drain", async () => {
    const lines: { msg: string; route?: string; repeated?: number }[] = [];
    const app = new Hono<AppEnv>();
    app.use("*", requestContext(createLogger("info", { write: (line: string) => void lines.push(JSON.parse(line) as never) })));
    app.get("/a", (c) => c.json({ error: "a" }, 429));
    app.get("/b", (c) => c.json({ error: "b" }, 429));
    const hitAt = async (ms: number, path: string) => {
      await vi.advanceTimersByTimeAsync(ms - Date.now());
      await app.request(path);
    };
    await hitAt(0, "/a"); // written
    await hitAt(100, "/a"); // skipped: a drain is due at 1,200
    await hitAt(900, "/b"); // written
    await hitAt(950, "/b"); // skipped; /b's window runs to 1,900, past the first drain
    await vi.advanceTimersByTimeAsync(1300);
    const repeated = () => lines.filter((l) => l.msg === "requests repeated").map((l) => [l.route, l.repeated]);
    expect(repeated()).toEqual([["/a", 1]]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(repeated()).toEqual([
      ["/a", 1],
      ["/b", 1],
    ]);
  });
});
