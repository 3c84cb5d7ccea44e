import { Worker } from "node:worker_threads";
import { FenceError, PayloadTooLargeError, UnprocessableDocumentError, type ErrorCode } from "../core/errors.js";
import { FairQueue, type Flow } from "../flow/fair-queue.js";
import { DEFAULT_CHUNK_OPTIONS, type ChunkOptions } from "./chunk-text.js";
import type { DocumentParser, ParsedDocument, ParseLimits } from "./document-parser.js";
import type { FormBodyOutcome } from "./form-body.js";
import type { JsonBodyLimits, JsonBodyOutcome } from "./json-body.js";
import type { SupportedMediaType } from "./parse-document.js";
import { threadCpuMs } from "../flow/thread-cpu-time.js";
import { startSharedIoThreads } from "../flow/thread-priority.mjs";

/** How often a running document's time is checked: the overrun past its limit is at most this. */
const WATCHDOG_INTERVAL_MS = 50;

export interface ParseThreadOptions extends ParseLimits {
  /** Threads kept running (default 2): one tenant's slow document never holds them all. */
  threads?: number | undefined;
  /**
   * Processing time one document may take before its thread is terminated (422): `baseMs`
   * (default 1 s) plus `perMbMs` (default 1 s) per MB of upload, so a small file that costs like a
   * large one — a compression bomb — is stopped within about a second. Counted as the thread's CPU
   * time where the OS reports it per thread (Linux), else as wall time.
   */
  timeLimit?: { baseMs: number; perMbMs: number } | undefined;
  /** V8 heap limit of a thread (default 256 MB); a bomb that needs more ends its thread, not the process. */
  maxHeapMb?: number | undefined;
  /** Stack of a thread (default 4 MB). */
  stackMb?: number | undefined;
}

/** What a thread is asked to do with the bytes. */
type Job = { kind: "document"; mediaType: SupportedMediaType } | { kind: "json"; limits: JsonBodyLimits | undefined } | { kind: "form"; contentType: string };

/** A request body's parse, answered by a thread. */
type BodyOutcome = JsonBodyOutcome | FormBodyOutcome;

interface Task {
  id: number;
  bytes: Uint8Array;
  job: Job;
  flowId: string;
  resolve(result: ParsedDocument | BodyOutcome): void;
  reject(error: Error): void;
}

interface ParseThread {
  worker: Worker;
  /** Has said it is ready once (a thread that dies before that failed to start). */
  started: boolean;
  /** Can take a document now. */
  ready: boolean;
  running: Task | undefined;
  /** The OS thread id it reported (Linux), to read its CPU time by. */
  tid: number | undefined;
  watchdog: NodeJS.Timeout | undefined;
}

type Reply =
  | { type: "ready"; tid: number | undefined }
  | { type: "parsed"; id: number; parsed: ParsedDocument }
  | { type: "body"; id: number; outcome: BodyOutcome }
  | { type: "failed"; id: number; code: ErrorCode; message: string };

/**
 * Parses uploads in worker threads. Extracting a PDF or an HTML page is synchronous CPU work
 * whose cost a tenant chooses: on the event loop, a 70 KB PDF that inflates to 20 MB froze every
 * tenant's requests for 8 s, and 2,000 nested <div>s overflowed the stack. Here each document
 * runs on a thread with a heap and stack limit and a wall-time limit; a thread that overruns is
 * terminated (the upload gets 422) and replaced, and the event loop only ever waits on a message.
 *
 * Threads are started once and reused, so a normal upload pays no start-up. Documents waiting
 * for a thread queue fairly by tenant (the FairQueue the embeddings use), and one tenant occupies
 * at most all but one thread, so another tenant's upload finds a thread free however many bombs
 * the first one sends.
 */
export class ParseThreadPool implements DocumentParser {
  readonly chunkOptions: ChunkOptions;
  private readonly threads: ParseThread[] = [];
  private readonly waiting = new FairQueue<Task>();
  private readonly runningByFlow = new Map<string, number>();
  private readonly timeLimit: { baseMs: number; perMbMs: number };
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: ParseThreadOptions) {
    this.chunkOptions = options.chunkOptions ?? DEFAULT_CHUNK_OPTIONS;
    this.timeLimit = options.timeLimit ?? { baseMs: 1_000, perMbMs: 1_000 };
    // Threads lower their priority first thing; libuv's shared I/O threads must not inherit it.
    startSharedIoThreads();
    for (let i = 0; i < Math.max(1, options.threads ?? 2); i++) this.threads.push(this.start());
  }

  parse(bytes: Uint8Array, mediaType: SupportedMediaType, flow: Flow): Promise<ParsedDocument> {
    // A copy crosses to the thread: the caller keeps its bytes (a job may need them again).
    return this.submit(bytes.slice(), { kind: "document", mediaType }, flow) as Promise<ParsedDocument>;
  }

  /** The bytes are handed over (transferred, not copied): the caller must not read them again. */
  parseJsonBody(bytes: Uint8Array, flow: Flow, limits?: JsonBodyLimits): Promise<JsonBodyOutcome> {
    return this.submit(handedOver(bytes), { kind: "json", limits }, flow) as Promise<JsonBodyOutcome>;
  }

  /** The bytes are handed over (transferred, not copied): the caller must not read them again. */
  parseFormBody(bytes: Uint8Array, contentType: string, flow: Flow): Promise<FormBodyOutcome> {
    return this.submit(handedOver(bytes), { kind: "form", contentType }, flow) as Promise<FormBodyOutcome>;
  }

  private submit(bytes: Uint8Array, job: Job, flow: Flow): Promise<ParsedDocument | BodyOutcome> {
    if (this.closed) return Promise.reject(new Error("The document parser is closed."));
    return new Promise((resolve, reject) => {
      this.waiting.push(flow, { id: this.nextId++, bytes, job, flowId: flow.id, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (let task = this.waiting.shift(); task; task = this.waiting.shift()) task.reject(new Error("The document parser is closed."));
    await Promise.all(this.threads.map((thread) => this.stop(thread, new Error("The document parser is closed."))));
  }

  private start(): ParseThread {
    const worker = new Worker(new URL("./parse-thread.worker.mjs", import.meta.url), {
      workerData: { limits: { maxTextChars: this.options.maxTextChars, chunkOptions: this.chunkOptions } },
      resourceLimits: { maxOldGenerationSizeMb: this.options.maxHeapMb ?? 256, stackSizeMb: this.options.stackMb ?? 4 },
    });
    // Idle threads must not keep a finished process (a test, a CLI command) alive.
    worker.unref();
    const thread: ParseThread = { worker, started: false, ready: false, running: undefined, tid: undefined, watchdog: undefined };
    worker.on("message", (reply: Reply) => this.onReply(thread, reply));
    // A reply that cannot be rebuilt here: a JSON body nested deeper than this thread's stack
    // deserialises (the thread's is larger). Its task is answered; the thread is fine.
    worker.on("messageerror", () => {
      if (thread.running?.job.kind === "json") this.finish(thread, { kind: "too_deep" });
      else this.finish(thread, new UnprocessableDocumentError("The document could not be read."));
    });
    worker.on("error", (error) => {
      thread.ready = false;
      this.finish(thread, threadFailure(error));
    });
    worker.on("exit", () => this.onExit(thread));
    return thread;
  }

  private onReply(thread: ParseThread, reply: Reply): void {
    if (reply.type === "ready") {
      thread.started = true;
      thread.ready = true;
      thread.tid = reply.tid;
      this.pump();
      return;
    }
    if (thread.running?.id !== reply.id) return;
    if (reply.type === "parsed") this.finish(thread, reply.parsed);
    else if (reply.type === "body") this.finish(thread, reply.outcome);
    else this.finish(thread, refusal(reply.code, reply.message, this.options.maxTextChars));
  }

  /** Settles the thread's document (a result, or why it was refused) and gives the thread the next one. */
  private finish(thread: ParseThread, outcome: ParsedDocument | BodyOutcome | Error): void {
    const task = thread.running;
    clearInterval(thread.watchdog);
    thread.running = undefined;
    thread.worker.unref();
    if (task) {
      const left = (this.runningByFlow.get(task.flowId) ?? 1) - 1;
      if (left > 0) this.runningByFlow.set(task.flowId, left);
      else this.runningByFlow.delete(task.flowId);
      if (outcome instanceof Error) task.reject(outcome);
      else task.resolve(outcome);
    }
    this.pump();
  }

  /** A thread that ended (terminated on overrun, out of memory, crashed) is replaced. */
  private onExit(thread: ParseThread): void {
    thread.ready = false;
    this.finish(thread, new UnprocessableDocumentError("The document could not be read."));
    const index = this.threads.indexOf(thread);
    if (index < 0 || this.closed) return;
    if (thread.started) {
      this.threads[index] = this.start();
      return;
    }
    // It died while starting (not a document's fault): nothing to wait for; retry a little later.
    for (let task = this.waiting.shift(); task; task = this.waiting.shift()) task.reject(new Error("The document parser could not start."));
    setTimeout(() => {
      if (!this.closed && this.threads[index] === thread) this.threads[index] = this.start();
    }, 1_000).unref();
  }

  private async stop(thread: ParseThread, reason: Error): Promise<void> {
    thread.ready = false;
    this.finish(thread, reason);
    await thread.worker.terminate();
  }

  private pump(): void {
    for (const thread of this.threads) {
      if (this.waiting.size === 0) return;
      if (!thread.ready || thread.running) continue;
      const task = this.waiting.shift((flowId) => this.mayStart(flowId));
      if (!task) return;
      thread.running = task;
      thread.worker.ref(); // a document in progress keeps the process up until it is answered
      this.runningByFlow.set(task.flowId, (this.runningByFlow.get(task.flowId) ?? 0) + 1);
      this.watch(thread, task);
      const { bytes } = task;
      thread.worker.postMessage({ id: task.id, bytes, job: task.job }, [bytes.buffer as ArrayBuffer]);
    }
  }

  /**
   * Terminates the thread once the document has used its time limit. CPU time where it can be
   * read, polled: the thread cannot be interrupted from inside while a parser runs synchronously.
   * Wall time stays a backstop (ten times the limit) for a thread that is starved rather than busy.
   */
  private watch(thread: ParseThread, task: Task): void {
    const limitMs = this.timeLimit.baseMs + (this.timeLimit.perMbMs * task.bytes.length) / 1_000_000;
    const cpuAtStart = threadCpuMs(thread.tid);
    const wallAtStart = performance.now();
    const wallLimitMs = cpuAtStart === undefined ? limitMs : limitMs * 10;
    thread.watchdog = setInterval(() => {
      const cpuNow = cpuAtStart === undefined ? undefined : threadCpuMs(thread.tid);
      const overCpu = cpuNow !== undefined && cpuNow - cpuAtStart! > limitMs;
      if (!overCpu && performance.now() - wallAtStart <= wallLimitMs) return;
      const seconds = Math.round(limitMs / 100) / 10;
      void this.stop(thread, new UnprocessableDocumentError(`The document took more than ${seconds} s of processing to read.`));
    }, Math.min(WATCHDOG_INTERVAL_MS, limitMs / 4));
  }

  /** One thread always stays out of any single tenant's reach (with one thread, it is shared). */
  private mayStart(flowId: string): boolean {
    return (this.runningByFlow.get(flowId) ?? 0) < Math.max(1, this.threads.length - 1);
  }
}

/** Only a whole buffer can be transferred: a view into a larger (or pooled) one is copied. */
function handedOver(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/** The typed error for a refusal reported by a thread. */
function refusal(code: ErrorCode, message: string, maxTextChars: number): FenceError {
  if (code === "payload_too_large") return new PayloadTooLargeError(maxTextChars, "characters");
  if (code === "unprocessable_document") return new UnprocessableDocumentError(message);
  return new FenceError(code, message);
}

/** Why a thread died: its heap limit (a bomb), or anything else — never its internals. */
function threadFailure(error: Error): Error {
  const code = (error as { code?: string }).code;
  if (code === "ERR_WORKER_OUT_OF_MEMORY") return new UnprocessableDocumentError("The document needs too much memory to be read.");
  return new UnprocessableDocumentError("The document could not be read.");
}
