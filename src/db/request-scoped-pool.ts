import pg from "pg";
import { currentScope } from "../platform/request-scope.js";

/**
 * A node-postgres "pool" for Workers that is really one small pool per invocation: drizzle is given
 * this object once (the app is built once per isolate), and every `query`/`connect` goes to the
 * current request's own pg.Pool, opened on first use and ended when the request is settled.
 * Hyperdrive pools the connections to the origin, so a connection per request is cheap.
 * The name contains "Pool" on purpose: drizzle's node-postgres session checks it to take a
 * dedicated client for each transaction (withTenant's set_config must share the transaction's connection).
 */
export class RequestScopedPool {
  constructor(
    private readonly connectionString: string,
    private readonly maxPerRequest = 5,
  ) {}

  private pool(): pg.Pool {
    const scope = currentScope();
    let entry = scope.resources.get("pg") as { pool: pg.Pool; close(): Promise<void> } | undefined;
    if (!entry) {
      // No idle_in_transaction_session_timeout here (Node sets it): a Worker's sockets close with
      // its invocation, which ends any open transaction, and Hyperdrive passes few startup options.
      const pool = new pg.Pool({ connectionString: this.connectionString, max: this.maxPerRequest });
      pool.on("error", () => {});
      entry = { pool, close: () => pool.end() };
      scope.resources.set("pg", entry);
    }
    return entry.pool;
  }

  query(...args: unknown[]): unknown {
    const pool = this.pool();
    return (pool.query as (...a: unknown[]) => unknown).apply(pool, args);
  }

  connect(...args: unknown[]): unknown {
    const pool = this.pool();
    return (pool.connect as (...a: unknown[]) => unknown).apply(pool, args);
  }
}
