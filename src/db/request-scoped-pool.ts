import pg from "pg";
import { currentScope } from "../core/request-scope.js";

/**
 * A node-postgres "pool" for Workers that is really one small pool per invocation: drizzle is given
 * this object once (the app is built once per isolate), and every `query`/`connect` goes to the
 * current request's own pg.Pool, opened on first use and ended when the request is settled.
 * Hyperdrive pools the connections to the origin, so a connection per request is cheap.
 * Its name does not matter: postgresDatabase (db/connect-postgres.ts) takes a client with
 * `connect()` for each transaction itself, so withTenant's set_config and queries share one connection.
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

  connect(): Promise<pg.PoolClient> {
    return this.pool().connect();
  }
}
