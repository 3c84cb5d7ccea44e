// Worker thread that moves queued uploads' bytes to and from Postgres (see postgres-payloads.ts for
// why it runs here). Plain JavaScript on purpose, as pglite-thread.worker.mjs: Node starts a worker
// outside any TypeScript loader.
import { parentPort, workerData } from "node:worker_threads";
import { serializeError } from "./thread-errors.mjs";
import { Buffer } from "node:buffer";
import pg from "pg";

const { databaseUrl, tenantRole, platformRole, idleInTransactionMs } = workerData;
const pool = new pg.Pool({ connectionString: databaseUrl, max: 4, idle_in_transaction_session_timeout: idleInTransactionMs });
pool.on("error", () => {}); // a dropped idle connection is replaced by the pool

/** One transaction as `role` (and, for the tenant role, as `tenantId`): what Database.withTenant sets. */
async function inTransaction(role, tenantId, run) {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT set_config('role', $1, true), set_config('app.tenant_id', $2, true)", [role, tenantId]);
    const result = await run(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

const handlers = {
  // A Buffer parameter goes in the protocol's binary format: the bytes as they are.
  write: ({ tenantId, jobId, bytes }) =>
    inTransaction(tenantRole, tenantId, (client) =>
      client.query("INSERT INTO job_payloads (tenant_id, job_id, bytes) VALUES ($1, $2, $3)", [tenantId, jobId, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]),
    ).then(() => null),
  read: async ({ tenantId, jobId }) => {
    const { rows } = await inTransaction(tenantRole, tenantId, (client) =>
      client.query("SELECT encode(bytes, 'base64') AS bytes FROM job_payloads WHERE tenant_id = $1 AND job_id = $2", [tenantId, jobId]),
    );
    if (rows.length === 0) return null;
    // A standalone copy, so its memory can be handed to the main thread instead of copied again.
    return new Uint8Array(Buffer.from(rows[0].bytes, "base64"));
  },
  remove: ({ keys }) =>
    inTransaction(platformRole, "", (client) =>
      client.query(
        "DELETE FROM job_payloads WHERE (tenant_id, job_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
        [keys.map((key) => key.tenantId), keys.map((key) => key.jobId)],
      ),
    ).then(() => null),
  removeTenant: ({ tenantId }) =>
    inTransaction(platformRole, "", (client) => client.query("DELETE FROM job_payloads WHERE tenant_id = $1", [tenantId])).then(() => null),
  // Only rows old enough that no instance can still be committing their job (see PayloadFiles.list).
  list: async ({ minAgeMs }) => {
    const { rows } = await inTransaction(platformRole, "", (client) =>
      client.query("SELECT tenant_id, job_id FROM job_payloads WHERE created_at < now() - $1::int * interval '1 millisecond'", [minAgeMs]),
    );
    return rows.map((row) => ({ tenantId: row.tenant_id, jobId: row.job_id }));
  },
  close: async () => {
    await pool.end();
    return null;
  },
};

parentPort.on("message", async (message) => {
  try {
    const result = await handlers[message.op](message);
    const transfer = result instanceof Uint8Array ? [result.buffer] : [];
    parentPort.postMessage({ type: "reply", id: message.id, result }, transfer);
  } catch (error) {
    parentPort.postMessage({ type: "reply", id: message.id, error: serializeError(error) });
  }
});
parentPort.postMessage({ type: "ready" });
