// The bench's HTTP client, in a thread of its own (see client.ts for why). Plain JavaScript on
// purpose: a worker is started by Node directly, outside the TypeScript loader.
import { performance } from "node:perf_hooks";
import { parentPort } from "node:worker_threads";

const { fetch } = globalThis;

parentPort.on("message", async ({ id, url, method, headers, body }) => {
  const started = performance.now();
  try {
    const response = await fetch(url, { method, headers, body });
    const text = await response.text();
    parentPort.postMessage({ id, status: response.status, text, ms: performance.now() - started });
  } catch (error) {
    parentPort.postMessage({ id, error: String(error?.message ?? error) });
  }
});
