import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";
import { assertTenantContext, type TenantContext } from "../tenancy/tenant-context.js";

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
  /** The input, e.g. the normalised question; hashed, so no raw text sits in key space. */
  input: string;
}

export class TenantCache<V extends object> {
  private readonly entries: LRUCache<string, V>;

  constructor(readonly name: string, maxEntries: number, ttlMs?: number) {
    this.entries = new LRUCache<string, V>({ max: maxEntries, ...(ttlMs ? { ttl: ttlMs } : {}) });
  }

  static keyFor(ctx: TenantContext, parts: CacheKeyParts): string {
    assertTenantContext(ctx);
    const digest = createHash("sha256").update(parts.input).digest("hex");
    return `${ctx.tenantId}|${parts.model}|${parts.dataVersion ?? "-"}|${digest}`;
  }

  get(ctx: TenantContext, parts: CacheKeyParts): V | undefined {
    return this.entries.get(TenantCache.keyFor(ctx, parts));
  }

  set(ctx: TenantContext, parts: CacheKeyParts, value: V): void {
    this.entries.set(TenantCache.keyFor(ctx, parts), value);
  }

  purgeTenant(tenantId: string): number {
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
}

/** The caches one Fence instance keeps; one place to purge a tenant from all of them. */
export class TenantCaches {
  readonly queryEmbeddings: TenantCache<{ vector: number[] }>;
  readonly answers: TenantCache<{ body: unknown }>;

  constructor(maxEntries: number) {
    this.queryEmbeddings = new TenantCache("query_embeddings", maxEntries);
    // Answers also depend on the LLM; a TTL bounds how long a provider-side change goes unseen.
    this.answers = new TenantCache("answers", maxEntries, 60 * 60 * 1000);
  }

  purgeTenant(tenantId: string): void {
    this.queryEmbeddings.purgeTenant(tenantId);
    this.answers.purgeTenant(tenantId);
  }
}
