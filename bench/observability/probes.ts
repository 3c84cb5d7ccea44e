import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { pino } from "pino";
import { createLogger, type Logger } from "../../src/observability/logger.js";
import { summarize, type LatencySummary } from "../stats.js";

/**
 * A targeted timing that says where the added time goes: it explains the side-by-side figures,
 * it is not part of them (it runs after the measured rounds). The run-record write is timed where
 * it happens, during the measured chats (instance.ts, `RunWriteTimer`).
 */

export interface LogLineTiming {
  lines: number;
  /** Per request: the two child loggers every tenant request makes, and its access line at `info`, to a file. */
  info: LatencySummary;
  /** The same calls on a `silent` logger (what the OFF build still pays: child bindings are masked at any level). */
  silent: LatencySummary;
}

/**
 * The logging work of one request, outside HTTP: the request-id child, the tenant child (both
 * masked on the way in), and the access line (masked, redacted, serialised, handed to the file
 * destination), with the fields a chat's line carries. Timed call by call, in µs.
 */
export async function timeAccessLogLines(dir: string, lines: number): Promise<LogLineTiming> {
  const destination = pino.destination({ dest: join(dir, "probe.log"), minLength: 0 });
  try {
    const info = await timeLines(createLogger("info", destination), lines);
    const silent = await timeLines(createLogger("silent"), lines);
    return { lines, info, silent };
  } finally {
    destination.flushSync();
    destination.end();
  }
}

async function timeLines(root: Logger, lines: number): Promise<LatencySummary> {
  const tenantId = randomUUID();
  const keyId = randomUUID();
  const samples: number[] = [];
  const warmup = Math.min(500, lines);
  for (let i = 0; i < warmup + lines; i++) {
    const started = performance.now();
    root
      .child({ request_id: randomUUID() })
      .child({ tenant_id: tenantId, key_id: keyId, project: null, environment: "live" })
      .info(
        { method: "POST", route: "/v1/chat", status: 200, latency_ms: 23.4, model: "bench-llm", prompt_tokens: 812, completion_tokens: 9, cache: "miss" },
        "request",
      );
    if (i >= warmup) samples.push((performance.now() - started) * 1000);
    // Let the destination's asynchronous writes drain, as they would between requests.
    if (i % 50 === 49) await yieldToLoop();
  }
  return summarize(samples);
}
