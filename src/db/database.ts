import { sql, type SQL } from "drizzle-orm";
import type { AnyPgColumn, PgDatabase, PgQueryResultHKT, PgTransaction } from "drizzle-orm/pg-core";
import type { ExtractTablesWithRelations } from "drizzle-orm";
import { assertTenantContext, type TenantContext } from "../core/tenant-context.js";
import { FairSeats } from "../flow/fair-seats.js";
import type { QueueDiscipline } from "../flow/fair-queue.js";
import { currentWorkClass } from "../flow/work-class.js";
import type { ChangeFeed } from "./change-feed.js";
import type { PayloadFiles } from "./payload-files.js";
import type * as schema from "./schema.js";
import { PLATFORM_ROLE, TENANT_ROLE } from "./schema/rls.js"; // roles of drizzle/0001_row_level_security.sql
import { refuseIfTenantGone } from "./tenant-row-gone.js";
import { retryingShardMoves } from "./transaction-retry.js";

type Schema = typeof schema;
export type DrizzleDb = PgDatabase<PgQueryResultHKT, Schema>;
export type Tx = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
export type BackendKind = "pglite" | "postgres";

/**
 * Deliberately weakened locks, for the isolation eval's mutation runs only: they prove that each
 * remaining lock holds alone, and that the eval detects a leak when all are gone. They can only be
 * passed in code at construction; no configuration or environment variable reaches them.
 */
export interface IsolationMutations {
  /** Tenant transactions run as a role whose policy admits every row (RLS effectively off). */
  readonly disableRowLevelSecurity?: boolean;
  /** `scope.owns()` stops adding `tenant_id = …` to queries (application filter off). */
  readonly disableApplicationFilter?: boolean;
  /** Context assembly stops checking each chunk's tenant (invariant I4 off). */
  readonly disableAssemblyAssertion?: boolean;
}

/**
 * What a tenant query gets: the transaction, the verified context, and `owns()`, the explicit
 * tenant predicate that documents intent and helps the planner. RLS is the backstop behind it.
 */
export class TenantScope {
  constructor(
    readonly tx: Tx,
    readonly ctx: TenantContext,
    private readonly mutations: IsolationMutations,
  ) {}

  get tenantId(): string {
    return this.ctx.tenantId;
  }

  owns(tenantColumn: AnyPgColumn): SQL {
    if (this.mutations.disableApplicationFilter) return sql`true`;
    return sql`${tenantColumn} = ${this.ctx.tenantId}`;
  }
}

/** What may be inlined in a `SET LOCAL` (Citus): role names, uuids, numbers, enum words; never a quote. */
const SETTING_LITERAL = /^[A-Za-z0-9_.-]{0,64}$/;

/** Platform transactions (key checks, admin, jobs' bookkeeping) share one flow of the fair queue. */
const PLATFORM_FLOW = "\u0000platform";

export interface TenantTransactionOptions {
  /** pgvector's HNSW candidate list for this transaction (higher = better recall, slower). */
  efSearch?: number;
}

export interface DatabaseOptions {
  mutations?: IsolationMutations | undefined;
  /** Where the backend can deliver NOTIFY to a long-lived process (PGlite, a Node pg pool). */
  openChangeFeed?: ((channel: string, onError?: (error: unknown) => void) => Promise<ChangeFeed>) | undefined;
  /**
   * Transactions the backend runs at once (PGlite: 1; a pool: its size). With it, waiting
   * transactions are served by a fair queue — interactive before bulk, tenants in turn — instead
   * of the backend's first-come-first-served one. Without it (a per-request pool), no queue here.
   */
  concurrency?: number | undefined;
  /** `fifo`: the benchmarks' baseline order. */
  discipline?: QueueDiscipline | undefined;
  /** Where queued uploads are kept outside the database (PGlite); without it, in the jobs row. */
  payloadFiles?: PayloadFiles | undefined;
  /** `citus`: the tables are distributed (db/citus.ts), and each transaction's settings must reach the workers. */
  distribution?: Distribution | undefined;
}

/** One Postgres (or PGlite), or a Citus cluster's coordinator with the tables distributed by tenant. */
export type Distribution = "single-node" | "citus";

/**
 * The only ways to run a query: `withTenant` for tenant data, `asPlatformAdmin` for the audited
 * platform operations, `asOwner` for schema work at start-up. Each opens a transaction and sets
 * role and settings in ONE parameterised statement (one round trip; measured 1.08× a bare query
 * against 1.32× for separate statements). `set_config(…, true)` is transaction-local, so a pooled
 * connection never carries a tenant into the next request.
 */
export class Database {
  readonly mutations: IsolationMutations;
  /** Set on the embedded database: its queued uploads wait in files, not in its statements. */
  readonly payloadFiles: PayloadFiles | undefined;
  private readonly gate: FairSeats | undefined;

  constructor(
    readonly kind: BackendKind,
    private readonly db: DrizzleDb,
    private readonly closeBackend: () => Promise<void>,
    private readonly options: DatabaseOptions = {},
  ) {
    this.mutations = options.mutations ?? {};
    this.payloadFiles = options.payloadFiles;
    this.gate = options.concurrency
      ? new FairSeats({
          seats: options.concurrency,
          maxQueuedPerFlow: Number.POSITIVE_INFINITY,
          maxQueued: Number.POSITIVE_INFINITY,
          maxWaitMs: Number.POSITIVE_INFINITY,
          keepFree: 0,
          windowMs: 1000,
          discipline: options.discipline,
        })
      : undefined;
  }

  /**
   * The changes announced on `channel` (NOTIFY), where this backend can deliver them to a
   * long-lived process: PGlite and a Node pg pool can; a per-request pool (Workers) cannot.
   * `onError` hears of a lost listening connection (the feed reconnects by itself).
   */
  async openChangeFeed(channel: string, onError?: (error: unknown) => void): Promise<ChangeFeed | undefined> {
    return this.options.openChangeFeed?.(channel, onError);
  }

  /** Runs one transaction when the fair queue gives it its turn (see DatabaseOptions.concurrency). */
  private async inTurn<T>(flowId: string, run: () => Promise<T>): Promise<T> {
    if (!this.gate) return run();
    const seat = await this.gate.take({ id: flowId, priority: currentWorkClass() });
    try {
      return await run();
    } finally {
      seat.release();
    }
  }

  /**
   * The only way to run a tenant's queries: one transaction as fence_app with the tenant set (RLS),
   * and a scope whose `owns()` adds the explicit tenant predicate. On Citus a transaction that a
   * shard split or move cut short is run again (db/transaction-retry.ts), so `fn` does database
   * work only; anything it causes outside the database happens after withTenant returns.
   */
  async withTenant<T>(
    ctx: TenantContext,
    fn: (scope: TenantScope) => Promise<T>,
    options: TenantTransactionOptions = {},
  ): Promise<T> {
    assertTenantContext(ctx);
    const role = this.mutations.disableRowLevelSecurity ? PLATFORM_ROLE : TENANT_ROLE;
    const efSearch = String(options.efSearch ?? 100);
    const transaction = () =>
      this.inTurn(ctx.tenantId, () => this.db.transaction(async (tx) => {
        await tx.execute(this.transactionSettings(role, ctx.tenantId, { "hnsw.iterative_scan": "relaxed_order", "hnsw.ef_search": efSearch }));
        return fn(new TenantScope(tx as Tx, ctx, this.mutations));
      }));
    try {
      return await (this.distribution === "citus" ? retryingShardMoves(transaction) : transaction());
    } catch (error) {
      refuseIfTenantGone(error);
    }
  }

  /**
   * Cross-tenant platform operations: tenant and key administration, key verification, purge.
   * `operation` names the reason so every use is greppable and auditable.
   */
  async asPlatformAdmin<T>(operation: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (!operation) throw new TypeError("asPlatformAdmin needs an operation name");
    return this.inTurn(PLATFORM_FLOW, () => this.db.transaction(async (tx) => {
      await tx.execute(this.transactionSettings(PLATFORM_ROLE, "", {}));
      return fn(tx as Tx);
    }));
  }

  get distribution(): Distribution {
    return this.options.distribution ?? "single-node";
  }

  /**
   * The statement that opens every tenant and platform transaction: its role, its tenant and the
   * search settings, for this transaction only, in one round trip.
   *
   * Single node: one parameterised `set_config(…, true)` per setting (measured 1.08× a bare query
   * against 1.32× for separate statements). Citus does not send `set_config` to the workers, where
   * the shards' rows are filtered by RLS: there it is `SET LOCAL` with
   * `citus.propagate_set_commands = 'local'`, which Citus repeats on every worker connection of the
   * transaction — several statements in one simple-protocol message, so still one round trip. SET
   * takes no parameters, so every value is checked to be a literal that needs no quoting. A tenant
   * transaction there also refuses any statement planned on more than one shard.
   */
  private transactionSettings(role: string, tenantId: string, search: Record<string, string>): SQL {
    const settings: [string, string][] = [["role", role], ["app.tenant_id", tenantId], ...Object.entries(search)];
    if (this.distribution === "single-node") {
      return sql`SELECT ${sql.join(settings.map(([name, value]) => sql`set_config(${name}, ${value}, true)`), sql`, `)}`;
    }
    // A tenant's transaction reads one tenant's shard: a statement that would fan out to several
    // shards (a query missing its tenant predicate) fails instead of running on every node. Not
    // with the application filter switched off (the isolation eval's mutation): that proves
    // row-level security alone, on every shard.
    if (tenantId && !this.mutations.disableApplicationFilter) settings.push(["citus.multi_task_query_log_level", "error"]);
    for (const [name, value] of settings) {
      if (!SETTING_LITERAL.test(value)) throw new TypeError(`Refusing to inline setting ${name}=${JSON.stringify(value)}`);
    }
    return sql.raw(
      ["SET LOCAL citus.propagate_set_commands = 'local'", ...settings.map(([name, value]) => `SET LOCAL ${name} = '${value}'`)].join("; "),
    );
  }

  /** Schema work (migrations, indexes) as the connecting user. Never for tenant data. */
  async asOwner<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.inTurn(PLATFORM_FLOW, () => this.db.transaction(async (tx) => fn(tx as Tx)));
  }

  async ping(): Promise<void> {
    await this.inTurn(PLATFORM_FLOW, () => this.db.execute(sql`SELECT 1`));
  }

  async close(): Promise<void> {
    await this.closeBackend();
  }
}

/** Runs raw SQL and returns its rows; both drivers (PGlite, node-postgres) answer with `{ rows }`. */
export async function queryRows<T>(tx: Tx, query: SQL): Promise<T[]> {
  const result = (await tx.execute(query)) as unknown as { rows: T[] };
  return result.rows;
}
