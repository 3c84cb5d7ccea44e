import { Worker } from "node:worker_threads";

/** What a query returns, as PGlite returns it. */
export interface PgliteResults {
  rows: unknown[];
  affectedRows?: number;
  fields: { name: string; dataTypeID: number }[];
}

interface QueryOptions {
  rowMode?: "array" | "object";
  /** Type OID → parser. Only value-preserving parsers cross the thread (see `query`). */
  parsers?: Record<number, unknown>;
}

/** The part of PGlite's interface that drizzle's PGlite driver and Fence use. */
export interface PgliteQueries {
  query(sql: string, params?: unknown[], options?: QueryOptions): Promise<PgliteResults>;
  exec(sql: string): Promise<unknown>;
}

export interface PgliteClient extends PgliteQueries {
  transaction<T>(fn: (tx: PgliteQueries) => Promise<T>): Promise<T>;
  listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

interface Reply {
  type: "reply";
  id: number;
  result?: unknown;
  error?: Record<string, unknown>;
}

/**
 * The embedded database (PGlite: Postgres compiled to WASM) in a worker thread of its own.
 *
 * In the event loop's thread, every statement's execution is synchronous WASM: under a tenant's
 * flood of chats a profile showed half the event loop spent inside PGlite (issue 16), and every
 * other tenant's request waited behind it at each step. Here the statements run on their own
 * thread, which the OS schedules preemptively beside the event loop; the loop only sends SQL and
 * receives rows. Transactions keep PGlite's own semantics — the worker holds a real PGlite
 * transaction open between messages, so one waits for another as it would in-process — and
 * Database's fair gate still decides which tenant's transaction goes next.
 *
 * Query options cross as data: a row mode, and the type OIDs whose text is kept as is (drizzle's
 * parsers for dates and intervals, the only parsers Fence passes). Errors come back with their
 * fields (SQLSTATE `code`, `severity`, `constraint`, …), which is all Fence reads of them.
 */
export class PgliteThread implements PgliteClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private readonly listeners = new Map<string, Set<(payload: string) => void>>();
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on("message", (message: Reply | { type: "notify"; channel: string; payload: string }) => {
      if (message.type === "notify") {
        for (const listener of this.listeners.get(message.channel) ?? []) listener(message.payload);
        return;
      }
      const call = this.pending.get(message.id);
      if (!call) return;
      this.pending.delete(message.id);
      if (message.error) call.reject(rebuildError(message.error));
      else call.resolve(message.result);
    });
    const fail = (error: Error) => {
      this.failure = error;
      for (const call of this.pending.values()) call.reject(error);
      this.pending.clear();
    };
    worker.on("error", fail);
    // A reply that cannot be read cannot be matched to its call: fail every call rather than leave one waiting forever.
    worker.on("messageerror", (error) => {
      for (const call of this.pending.values()) call.reject(error);
      this.pending.clear();
    });
    worker.on("exit", (code) => fail(new Error(`The database thread exited (code ${code})`)));
  }

  /** Starts the thread and opens the database in `dataDir` (undefined: in memory). */
  static async open(dataDir: string | undefined): Promise<PgliteThread> {
    const worker = new Worker(new URL("./pglite-thread.worker.mjs", import.meta.url), { workerData: { dataDir } });
    await new Promise<void>((resolve, reject) => {
      worker.once("message", (message: { type: string; error?: Record<string, unknown> }) => {
        if (message.type === "ready") resolve();
        else reject(rebuildError(message.error ?? { message: "the database thread failed to start" }));
      });
      worker.once("error", reject);
    });
    return new PgliteThread(worker);
  }

  async query(sql: string, params: unknown[] = [], options?: QueryOptions, tx?: number): Promise<PgliteResults> {
    const rawTypes = Object.keys(options?.parsers ?? {}).map(Number);
    const results = (await this.call("query", { sql, params, options: { rowMode: options?.rowMode, rawTypes }, tx })) as PgliteResults;
    parseJsonColumns(results, rawTypes);
    return results;
  }

  exec(sql: string, tx?: number): Promise<unknown> {
    return this.call("exec", { sql, tx });
  }

  async transaction<T>(fn: (tx: PgliteQueries) => Promise<T>): Promise<T> {
    const { tx } = (await this.call("begin", {})) as { tx: number };
    const handle: PgliteQueries = {
      query: (sql, params, options) => this.query(sql, params, options, tx),
      exec: (sql) => this.exec(sql, tx),
    };
    let result: T;
    try {
      result = await fn(handle);
    } catch (error) {
      await this.call("end", { tx, commit: false }).catch(() => undefined);
      throw error;
    }
    await this.call("end", { tx, commit: true });
    return result;
  }

  async listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>> {
    let listeners = this.listeners.get(channel);
    if (!listeners) {
      listeners = new Set();
      this.listeners.set(channel, listeners);
      await this.call("listen", { channel });
    }
    listeners.add(callback);
    return async () => {
      listeners.delete(callback);
      if (listeners.size > 0 || this.listeners.get(channel) !== listeners) return;
      this.listeners.delete(channel);
      await this.call("unlisten", { channel });
    };
  }

  async close(): Promise<void> {
    if (!this.failure) await this.call("close", {}).catch(() => undefined);
    await this.worker.terminate();
  }

  private call(op: string, fields: Record<string, unknown>): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...fields, op, id });
    });
  }
}

/**
 * json and jsonb arrive as text and are parsed here. A structured clone of a parsed document is
 * deserialized recursively, and a tenant's metadata nested a few thousand levels deep overflows the
 * receiving thread's stack (the message is then dropped); JSON.parse has no such limit.
 */
const JSON_TYPES = new Set([114, 3802]);

function parseJsonColumns(results: PgliteResults, rawTypes: number[]): void {
  const columns = results.fields.flatMap((field, index) => (JSON_TYPES.has(field.dataTypeID) && !rawTypes.includes(field.dataTypeID) ? [{ index, name: field.name }] : []));
  if (columns.length === 0) return;
  for (const row of results.rows as (unknown[] | Record<string, unknown>)[]) {
    for (const { index, name } of columns) {
      const values = row as Record<string | number, unknown>;
      const at = Array.isArray(row) ? index : name;
      if (typeof values[at] === "string") values[at] = JSON.parse(values[at]);
    }
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
