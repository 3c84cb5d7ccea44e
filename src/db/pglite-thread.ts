import { Worker } from "node:worker_threads";
import { ThreadCalls } from "./thread-calls.js";

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
  private constructor(
    private readonly thread: ThreadCalls,
    private readonly listeners: Map<string, Set<(payload: string) => void>>,
  ) {}

  /** Starts the thread and opens the database in `dataDir` (undefined: in memory). */
  static async open(dataDir: string | undefined): Promise<PgliteThread> {
    const worker = new Worker(new URL("./pglite-thread.worker.mjs", import.meta.url), { workerData: { dataDir } });
    const listeners = new Map<string, Set<(payload: string) => void>>();
    const thread = await ThreadCalls.start(worker, (message) => {
      if (message.type !== "notify") return;
      for (const listener of listeners.get(message.channel as string) ?? []) listener(message.payload as string);
    });
    return new PgliteThread(thread, listeners);
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

  close(): Promise<void> {
    return this.thread.close();
  }

  private call(op: string, fields: Record<string, unknown>): Promise<unknown> {
    return this.thread.call(op, fields);
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
