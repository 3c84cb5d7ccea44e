import { Worker } from "node:worker_threads";

export interface RawResponse {
  status: number;
  text: string;
  /** From sending the request to having read the whole body, timed in the client's thread. */
  ms: number;
}

interface Reply {
  id: number;
  status?: number;
  text?: string;
  ms?: number;
  error?: string;
}

/**
 * The HTTP client of the bench, on a thread of its own. In the server's thread, the client's
 * clock would also run while the server finished work it does after responding (a run write that
 * is not awaited, a log write's callback), because the client reads the response only when the
 * server's thread is free; from another thread it sees the response when it arrives, as a real
 * client would. Requests are answered in any order; the bench sends one at a time.
 */
export class ClientThread {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve(r: RawResponse): void; reject(e: Error): void }>();

  private constructor(private readonly worker: Worker) {
    worker.on("message", (reply: Reply) => {
      const pending = this.waiting.get(reply.id);
      if (!pending) return;
      this.waiting.delete(reply.id);
      if (reply.error !== undefined) pending.reject(new Error(`client: ${reply.error}`));
      else pending.resolve({ status: reply.status!, text: reply.text!, ms: reply.ms! });
    });
    worker.on("error", (error) => {
      for (const pending of this.waiting.values()) pending.reject(error);
      this.waiting.clear();
    });
  }

  static start(): ClientThread {
    return new ClientThread(new Worker(new URL("./client.worker.mjs", import.meta.url)));
  }

  request(url: string, method: string, headers: Record<string, string>, body?: string): Promise<RawResponse> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, url, method, headers, body });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
