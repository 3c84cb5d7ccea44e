import { firstJsonLine, forkEntry, stopChild } from "./children.js";
import type { LoadGenerator } from "./generator.js";
import type { GeneratorResult } from "./generator-protocol.js";
import type { FloodOptions } from "./options.js";

/** Connections the ceiling is measured with: as many as the refused flood of shape (a). */
export const CEILING_CONNECTIONS = 64;

/**
 * Requests per second a bare Hono route answers on this machine to the same load generator with
 * the same connections: the most a refusal could ever cost less than. Measured in the same run as
 * the floods, right before shape (a), so both see the same machine.
 */
export async function measureCeiling(generator: LoadGenerator, options: FloodOptions): Promise<GeneratorResult> {
  const child = forkEntry(new URL("./bare-hono.ts", import.meta.url));
  try {
    const { url } = await firstJsonLine<{ url: string }>(child, "bare Hono app", 30_000);
    const start = Date.now() + options.warmupSeconds * 1000;
    const end = start + options.ceilingSeconds * 1000;
    const run = generator.start({
      url,
      keys: [],
      streams: [{ op: "bare", connections: CEILING_CONNECTIONS }],
      label: "ceiling",
      seed: options.seed,
      windowStart: start,
      windowEnd: end,
      stopAt: end,
    });
    return await run.result;
  } finally {
    await stopChild(child);
  }
}
