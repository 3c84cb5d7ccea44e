// Worker thread that parses uploads (see parse-thread-pool.ts for why parsing runs here). Plain
// JavaScript, as local-use.worker.mjs: Node starts a worker outside any TypeScript loader, under
// `npm start` and under the test runner alike, so the TypeScript pipeline is loaded through tsx.
import { parentPort, workerData } from "node:worker_threads";
import { tsImport } from "tsx/esm/api";
import { osThreadId, threadPriority } from "../flow/thread-priority.mjs";

// Parsing is background work next to the event loop: on a machine with few cores, a thread busy
// with one tenant's large document must not take the core that answers every other tenant. Lowered
// before loading too: a thread replaced after a bomb must not load at normal priority (about half
// a second of CPU). The pool started libuv's shared I/O threads first, so they keep normal priority.
threadPriority(true);
const { parseDocument, asParseError } = await tsImport("./document-parser.ts", import.meta.url);
const { parseJsonBody } = await tsImport("./json-body.ts", import.meta.url);
const { parseFormBody } = await tsImport("./form-body.ts", import.meta.url);
// Loaded now, not on the first PDF: start-up happens once per thread, off every request's path.
await import("unpdf");
parentPort.postMessage({ type: "ready", tid: osThreadId() });

parentPort.on("message", async ({ id, bytes, job }) => {
  if (job.kind === "json") {
    const outcome = parseJsonBody(bytes, job.limits);
    try {
      parentPort.postMessage({ type: "body", id, outcome });
    } catch {
      // Serialising is recursive: valid JSON thousands of levels deep overflows it.
      parentPort.postMessage({ type: "body", id, outcome: { kind: "too_deep" } });
    }
    return;
  }
  if (job.kind === "form") {
    const outcome = await parseFormBody(bytes, job.contentType);
    // Each file's bytes are its own buffer: handed back, not copied.
    const files = outcome.kind === "parsed" ? outcome.entries.flatMap((entry) => ("file" in entry ? [entry.file.bytes.buffer] : [])) : [];
    parentPort.postMessage({ type: "body", id, outcome }, files);
    return;
  }
  try {
    const parsed = await parseDocument(bytes, job.mediaType, workerData.limits);
    parentPort.postMessage({ type: "parsed", id, parsed });
  } catch (error) {
    const refused = asParseError(error);
    parentPort.postMessage({ type: "failed", id, code: refused.code, message: refused.message });
  }
});
