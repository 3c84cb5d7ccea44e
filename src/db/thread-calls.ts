import type { TransferListItem, Worker } from "node:worker_threads";

/** Any message of a thread: a reply to a call, or one of its own (PGlite's `notify`). */
type ThreadMessage = { type: string } & Record<string, unknown>;

interface Reply {
  type: "reply";
  id: number;
  result?: unknown;
  error?: Record<string, unknown>;
}

/**
 * Calls into a database worker thread (the embedded database's, the Postgres payloads'): each call
 * posts `{ op, id, …fields }` and resolves with the thread's reply of the same id. Messages that are
 * not replies (PGlite's notifications) go to `onMessage`. A thread that fails or exits fails every
 * call in flight and every later one, so no caller waits forever.
 */
export class ThreadCalls {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private failure: Error | undefined;

  private constructor(
    readonly worker: Worker,
    onMessage: (message: ThreadMessage) => void,
  ) {
    worker.on("message", (message: ThreadMessage) => {
      if (message.type !== "reply") return onMessage(message);
      const reply = message as unknown as Reply;
      const call = this.pending.get(reply.id);
      if (!call) return;
      this.pending.delete(reply.id);
      if (reply.error) call.reject(rebuildError(reply.error));
      else call.resolve(reply.result);
    });
    const fail = (error: Error) => {
      this.failure = error;
      this.rejectAll(error);
    };
    worker.on("error", fail);
    // A reply that cannot be read cannot be matched to its call: fail every call rather than leave one waiting forever.
    worker.on("messageerror", (error) => this.rejectAll(error));
    worker.on("exit", (code) => fail(new Error(`The database thread exited (code ${code})`)));
  }

  /** Waits for the thread's `ready` (or its `failed` with the error), then takes its calls. */
  static async start(worker: Worker, onMessage: (message: ThreadMessage) => void = () => undefined): Promise<ThreadCalls> {
    await new Promise<void>((resolve, reject) => {
      worker.once("message", (message: { type: string; error?: Record<string, unknown> }) => {
        if (message.type === "ready") resolve();
        else reject(rebuildError(message.error ?? { message: "the database thread failed to start" }));
      });
      worker.once("error", reject);
    });
    return new ThreadCalls(worker, onMessage);
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  call(op: string, fields: Record<string, unknown>, transfer: TransferListItem[] = []): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...fields, op, id }, transfer);
    });
  }

  /** Asks the thread to `close` (unless it failed), then ends it. */
  async close(): Promise<void> {
    if (!this.failure) await this.call("close", {}).catch(() => undefined);
    await this.worker.terminate();
  }

  private rejectAll(error: Error): void {
    for (const call of this.pending.values()) call.reject(error);
    this.pending.clear();
  }
}

/** The thread's error as an Error with the same fields (SQLSTATE code, severity, constraint, …). */
function rebuildError(fields: Record<string, unknown>): Error {
  const { message, name, stack, ...rest } = fields;
  const error = Object.assign(new Error(String(message ?? "database error")), rest);
  if (typeof name === "string") error.name = name;
  if (typeof stack === "string") error.stack = stack;
  return error;
}
