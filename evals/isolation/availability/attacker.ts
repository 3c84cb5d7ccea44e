import { Worker } from "node:worker_threads";
import type { AttackerData, AttackerMessage } from "./attacker-thread.js";

/**
 * The attacker of one window, on its own thread (attacker-thread.ts says why). Start it, wait
 * until its requests are built, start the victim, then `send()`: the outcomes come back sorted.
 */
export class AttackerThread {
  private readonly worker: Worker;
  private readonly messages: AttackerMessage[] = [];
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;

  private constructor(data: AttackerData) {
    this.worker = new Worker(new URL("./attacker-thread.worker.mjs", import.meta.url), { workerData: data });
    this.worker.on("message", (message: AttackerMessage) => {
      this.messages.push(message);
      this.waiter?.();
    });
    this.worker.on("error", (error) => {
      this.failure = error;
      this.waiter?.();
    });
  }

  /** Resolves once the thread has built every request of the input. */
  static async start(data: AttackerData): Promise<AttackerThread> {
    const attacker = new AttackerThread(data);
    await attacker.next("ready");
    return attacker;
  }

  /** Sends the input; resolves with what each request got ("202", "timeout", …). */
  async send(): Promise<string[]> {
    this.worker.postMessage("go");
    try {
      const done = await this.next("done");
      return done.type === "done" ? done.outcomes : [];
    } finally {
      await this.worker.terminate();
    }
  }

  private async next(type: AttackerMessage["type"]): Promise<AttackerMessage> {
    for (;;) {
      if (this.failure) throw this.failure;
      const at = this.messages.findIndex((message) => message.type === type);
      if (at >= 0) return this.messages.splice(at, 1)[0]!;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}
