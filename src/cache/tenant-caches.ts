import { createHmac } from "node:crypto";
import { LRUCache } from "lru-cache";
import { assertTenantContext, tenantCacheSecret, type TenantContext } from "../core/tenant-context.js";

/**
 * Tenant-keyed caches (invariant I5). Callers never build a key: they pass the verified
 * TenantContext and the parts that make the entry unique (model, data version, input), and the
 * tenant id is put first in the key here. So no code path can produce a key shared by two tenants,
 * and a hit on another tenant's entry (even as a timing signal) is impossible.
 */
export interface CacheKeyParts {
  /** The model whose output is cached (embedding model, or chat model / answer mode). */
  model: string;
  /** The tenant's data version for entries derived from its documents; omit for pure functions. */
  dataVersion?: number;
  /** The input, e.g. the normalised question; keyed-hashed, so no raw text sits in key space. */
  input: string;
}

/**
 * A second level shared by every instance (Redis, with REDIS_URL). Values are JSON; a failing
 * backend is a miss, never a failed request. Every key belongs to a group (one per tenant), and a
 * group is deleted as a whole by what it indexed, not by scanning the whole key space: a tenant
 * that deletes documents often must not make Redis walk every other tenant's keys each time.
 */
export interface SharedCacheBackend {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlMs: number, group: string): Promise<void>;
  /** Deletes every key set in `group`; returns how many. */
  deleteGroup(group: string): Promise<number>;
}

/** Receives each lookup's tenant, cache name and whether it was a hit (the metrics' cache sink). */
export type CacheLookupSink = (tenantId: string, cache: string, hit: boolean) => void;

/** How long a shared entry lives when the cache itself has no TTL (bounds Redis memory). */
const SHARED_DEFAULT_TTL_MS = 24 * 60 * 60 * 1000;

export class TenantCache<V extends object> {
  private readonly entries: LRUCache<string, V>;

  constructor(
    readonly name: string,
    maxEntries: number,
    private readonly ttlMs?: number,
    private readonly shared?: SharedCacheBackend,
    private readonly onSharedError: (error: unknown) => void = () => undefined,
    /** Told of every lookup's result (metrics); never of keys or values. */
    private readonly onLookup?: CacheLookupSink,
  ) {
    this.entries = new LRUCache<string, V>({ max: maxEntries, ...(ttlMs ? { ttl: ttlMs } : {}) });
  }

  /**
   * The entry's key: the tenant id, then an HMAC of model, data version and input under the
   * tenant's cache secret. Unsalted, a hash of the question would let anyone who reads Redis
   * confirm a guessed question; keyed, it reveals nothing, and rotating the secret (document
   * delete) orphans every entry of the tenant at once on every instance, whatever its level.
   * A context issued without a secret gets no key: it is never cached (fail-closed).
   */
  static keyFor(ctx: TenantContext, parts: CacheKeyParts): string | undefined {
    assertTenantContext(ctx);
    const secret = tenantCacheSecret(ctx);
    if (!secret) return undefined;
    const digest = createHmac("sha256", secret)
      .update(JSON.stringify([parts.model, parts.dataVersion ?? null, parts.input]))
      .digest("hex");
    return `${ctx.tenantId}|${digest}`;
  }

  /** Key space in the shared backend: the tenant first here too (its group, for a purge). */
  static sharedPrefix(tenantId: string): string {
    return `fence:cache:${tenantId}:`;
  }

  async get(ctx: TenantContext, parts: CacheKeyParts): Promise<V | undefined> {
    const value = await this.lookup(ctx, parts);
    this.onLookup?.(ctx.tenantId, this.name, value !== undefined);
    return value;
  }

  private async lookup(ctx: TenantContext, parts: CacheKeyParts): Promise<V | undefined> {
    const key = TenantCache.keyFor(ctx, parts);
    if (key === undefined) return undefined;
    const local = this.entries.get(key);
    if (local || !this.shared) return local;
    try {
      const stored = await this.shared.get(this.sharedKey(ctx.tenantId, key));
      if (stored === null) return undefined;
      const value = JSON.parse(stored) as V;
      this.entries.set(key, value);
      return value;
    } catch (error) {
      this.onSharedError(error);
      return undefined;
    }
  }

  async set(ctx: TenantContext, parts: CacheKeyParts, value: V): Promise<void> {
    const key = TenantCache.keyFor(ctx, parts);
    if (key === undefined) return;
    this.entries.set(key, value);
    if (!this.shared) return;
    await this.shared
      .set(this.sharedKey(ctx.tenantId, key), JSON.stringify(value), this.ttlMs ?? SHARED_DEFAULT_TTL_MS, TenantCache.sharedPrefix(ctx.tenantId))
      .catch(this.onSharedError);
  }

  /** Drops this instance's entries of the tenant (the shared ones go by prefix, in TenantCaches). */
  purgeLocal(tenantId: string): number {
    let removed = 0;
    for (const key of [...this.entries.keys()]) {
      if (key.startsWith(`${tenantId}|`)) {
        this.entries.delete(key);
        removed++;
      }
    }
    return removed;
  }

  get size(): number {
    return this.entries.size;
  }

  private sharedKey(tenantId: string, key: string): string {
    return `${TenantCache.sharedPrefix(tenantId)}${this.name}:${key}`;
  }
}

/**
 * The caches of a Fence instance; one place to purge a tenant from all of them. With a shared
 * backend (REDIS_URL) a miss here is looked up there, so an answer computed on one instance is a
 * hit on the others. Correctness never depends on sharing: answer keys carry the tenant's data
 * version, read from the database on every chat, so no instance can serve a stale answer or a
 * deleted document's; every key also carries the tenant's cache secret, which comes with the
 * verified key (kept true by the change feed, within its bound on other instances).
 */
export class TenantCaches {
  readonly queryEmbeddings: TenantCache<{ vector: number[] }>;
  readonly answers: TenantCache<{ body: unknown }>;

  constructor(
    maxEntries: number,
    private readonly shared?: SharedCacheBackend,
    private readonly onSharedError: (error: unknown) => void = () => undefined,
    onLookup?: CacheLookupSink,
    /**
     * Told of each purge: the tenant's cache secret rotated (or the tenant is gone), so whatever
     * holds a copy of it on this instance (the verified-key cache) drops it now, not when the
     * database's notification arrives.
     */
    private readonly onPurge?: (tenantId: string) => void,
  ) {
    this.queryEmbeddings = new TenantCache("query_embeddings", maxEntries, undefined, shared, onSharedError, onLookup);
    // Answers also depend on the LLM; a TTL bounds how long a provider-side change goes unseen.
    this.answers = new TenantCache("answers", maxEntries, 60 * 60 * 1000, shared, onSharedError, onLookup);
  }

  /**
   * Drops the tenant's entries here and in the shared level (document delete, tenant purge). Other
   * instances' local entries are unreachable: answers are keyed by the data version, which each
   * chat reads afresh; the rotated cache secret reaches their verified keys within the change
   * feed's bound (what a query embedding under the old secret could still serve meanwhile is the
   * embedding of that same query); and they are evicted in time by the LRU.
   */
  async purgeTenant(tenantId: string): Promise<void> {
    this.onPurge?.(tenantId);
    this.queryEmbeddings.purgeLocal(tenantId);
    this.answers.purgeLocal(tenantId);
    // If Redis is down the shared entries stay until their TTL: unreachable anyway, for the reason above.
    await this.shared?.deleteGroup(TenantCache.sharedPrefix(tenantId)).catch(this.onSharedError);
  }
}
