// Worker thread that owns the embedded database (see pglite-thread.ts for why it runs here).
// Plain JavaScript on purpose: a worker is started by Node directly, outside any TypeScript loader,
// both under `npm start` (tsx) and under the test runner.
import { parentPort, workerData } from "node:worker_threads";
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";

/** Thrown inside a transaction the caller ended without committing: PGlite then rolls it back. */
const ROLLBACK = Symbol("rollback");

/** The fields of an error worth carrying back: PGlite's DatabaseError keeps its report in own fields. */
function serializeError(error) {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const fields = { name: error.name, message: error.message, stack: error.stack };
  for (const [key, value] of Object.entries(error)) {
    if (["string", "number", "boolean"].includes(typeof value)) fields[key] = value;
  }
  return fields;
}

/** json and jsonb: sent as text and parsed by the main thread (see `JSON_TYPES` in pglite-thread.ts). */
const JSON_TYPES = [114, 3802];
const keepText = (value) => value;

/** Query options as the main thread sent them: parsers arrive as the type OIDs whose text is kept as is. */
function queryOptions(options) {
  const parsers = {};
  for (const oid of [...JSON_TYPES, ...(options?.rawTypes ?? [])]) parsers[oid] = keepText;
  return { rowMode: options?.rowMode, parsers };
}

let db;
try {
  db = await PGlite.create(workerData.dataDir, { extensions: { vector } });
  parentPort.postMessage({ type: "ready" });
} catch (error) {
  parentPort.postMessage({ type: "failed", error: serializeError(error) });
}

/** Open transactions: the handle PGlite gave, and how to end it. */
const transactions = new Map();
let nextTransaction = 1;
const listening = new Map();

const handlers = {
  query: ({ sql, params, options, tx }) => (tx ? transactions.get(tx).handle : db).query(sql, params, queryOptions(options)),
  exec: ({ sql, tx }) => (tx ? transactions.get(tx).handle : db).exec(sql),
  begin: () =>
    new Promise((opened, failed) => {
      const id = nextTransaction++;
      let end;
      const ended = new Promise((resolve) => (end = resolve));
      // PGlite's own transaction: it waits for the one before it, and rolls back on a throw.
      const done = db.transaction(async (handle) => {
        transactions.get(id).handle = handle;
        opened({ tx: id });
        if (!(await ended)) throw ROLLBACK;
      });
      transactions.set(id, { handle: undefined, end, done });
      done.catch(failed); // only matters if BEGIN itself failed; otherwise `end` reports it
    }),
  end: async ({ tx, commit }) => {
    const transaction = transactions.get(tx);
    transactions.delete(tx);
    transaction.end(commit);
    try {
      await transaction.done;
    } catch (error) {
      if (error !== ROLLBACK) throw error;
    }
    return null;
  },
  listen: async ({ channel }) => {
    if (!listening.has(channel)) {
      listening.set(channel, await db.listen(channel, (payload) => parentPort.postMessage({ type: "notify", channel, payload })));
    }
    return null;
  },
  unlisten: async ({ channel }) => {
    await listening.get(channel)?.();
    listening.delete(channel);
    return null;
  },
  close: async () => {
    await db.close();
    return null;
  },
};

parentPort.on("message", async (message) => {
  try {
    const result = await handlers[message.op](message);
    parentPort.postMessage({ type: "reply", id: message.id, result });
  } catch (error) {
    parentPort.postMessage({ type: "reply", id: message.id, error: serializeError(error) });
  }
});
