import { gt, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { apiKeys } from "../db/schema.js";

export interface KeyDirectoryOptions {
  /** At most one refresh starts per interval, however many unknown keys are presented. */
  refreshIntervalMs?: number;
  /** An incremental refresh re-reads secrets set this long before the newest one seen (commit lag). */
  overlapMs?: number;
  /** A refresh after this long reloads every key instead (drops the hashes of purged tenants). */
  fullReloadMs?: number;
  now?: () => number;
}

/** Bits of a key hash the directory keeps: 64 make a false "known" rare, and it only costs the row read. */
const HASH_CHARS = 16;

/**
 * The key hashes that exist, held in memory on each instance, so that an unknown key is refused
 * without a database transaction (issue 14, row 14: a flood of random well-formed keys, each
 * costing a query before any limit, slowed every tenant). A known key still has its row read on
 * every request — that read, not this set, decides revocation and the tenant (invariant I1).
 *
 * A hash missing from the set waits for a refresh that starts after it arrived, so a key issued a
 * moment ago on another instance works on its first request here. Refreshes are coalesced: at
 * most one starts per `refreshIntervalMs`, shared by every miss waiting for it, so a flood costs
 * a few small queries a second in total and its requests are slowed by the wait.
 */
export class KeyDirectory {
  private readonly known = new Set<string>();
  private readonly refreshIntervalMs: number;
  private readonly overlapMs: number;
  private readonly fullReloadMs: number;
  private readonly now: () => number;
  /** Newest `secret_set_at` seen (database clock); undefined until the first full load. */
  private newest: Date | undefined;
  private lastFullLoadAt = Number.NEGATIVE_INFINITY;
  private lastStartedAt = Number.NEGATIVE_INFINITY;
  private running: Promise<void> | undefined;
  /** The next refresh, not started yet: every miss that arrives before it starts shares it. */
  private next: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    options: KeyDirectoryOptions = {},
  ) {
    this.refreshIntervalMs = options.refreshIntervalMs ?? 250;
    this.overlapMs = options.overlapMs ?? 60_000;
    this.fullReloadMs = options.fullReloadMs ?? 10 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /** False only when the hash is unknown even to a refresh that began after this call. */
  async mayExist(keyHash: string): Promise<boolean> {
    const entry = keyHash.slice(0, HASH_CHARS);
    if (this.known.has(entry)) return true;
    await this.refreshStartingLater();
    return this.known.has(entry);
  }

  /** Known now, without waiting for a refresh (a known key is never held up by the address limit). */
  knows(keyHash: string): boolean {
    return this.known.has(keyHash.slice(0, HASH_CHARS));
  }

  /** A key issued by this instance is known at once (no refresh needed for its first request). */
  add(keyHash: string): void {
    this.known.add(keyHash.slice(0, HASH_CHARS));
  }

  get size(): number {
    return this.known.size;
  }

  private refreshStartingLater(): Promise<void> {
    if (this.next) return this.next;
    const wait = Math.max(0, this.lastStartedAt + this.refreshIntervalMs - this.now());
    const previous = this.running ?? Promise.resolve();
    const next = Promise.all([previous.catch(() => undefined), wait > 0 ? delay(wait) : undefined]).then(() => {
      this.next = undefined;
      this.lastStartedAt = this.now();
      const run = this.refresh().finally(() => {
        if (this.running === run) this.running = undefined;
      });
      this.running = run;
      return run;
    });
    this.next = next;
    return next;
  }

  private async refresh(): Promise<void> {
    const full = this.newest === undefined || this.now() - this.lastFullLoadAt >= this.fullReloadMs;
    const since = full ? undefined : new Date(this.newest!.getTime() - this.overlapMs);
    // By `secret_set_at`, not `created_at`: a rotation gives an old key a new secret. The secret a
    // rotation replaced was known before it (and is kept through a full reload while it still works).
    const rows = await this.db.asPlatformAdmin(full ? "key-directory-load" : "key-directory-refresh", (tx) =>
      tx
        .select({
          hash: sql<string>`left(${apiKeys.keyHash}, ${HASH_CHARS})`,
          priorHash: sql<string | null>`CASE WHEN ${apiKeys.priorKeyExpiresAt} > now() THEN left(${apiKeys.priorKeyHash}, ${HASH_CHARS}) END`,
          setAt: apiKeys.secretSetAt,
        })
        .from(apiKeys)
        .where(since ? gt(apiKeys.secretSetAt, since) : undefined),
    );
    if (full) {
      this.known.clear();
      this.lastFullLoadAt = this.now();
    }
    let newest = full ? new Date(0) : this.newest!;
    for (const row of rows) {
      this.known.add(row.hash);
      if (row.priorHash) this.known.add(row.priorHash);
      if (row.setAt > newest) newest = row.setAt;
    }
    this.newest = newest;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
