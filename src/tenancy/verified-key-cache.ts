import type { Scope } from "../core/scopes.js";
import { LRUCache } from "lru-cache";
import type { ChangeFeed, ChangeSink } from "../db/change-feed.js";
import type { KeyEnvironment } from "../core/tenant-context.js";
import type { TenantQuota } from "./tenant-quota.js";


/** What authentication reads about a key: who it belongs to, whether it is revoked, its limits. */
export interface VerifiedKey {
  tenantId: string;
  keyId: string;
  project: string;
  environment: KeyEnvironment;
  scopes: readonly Scope[];
  /** Past this instant (ms since epoch) the key authenticates nothing; checked on every request. */
  expiresAt: number | null;
  /** Set when the presented secret is the one a rotation replaced: it works until then (ms since epoch). */
  graceEndsAt: number | null;
  cacheSecret: string;
  revoked: boolean;
  /** Its tenant is suspended by the platform (tenants.suspended_at): the key verifies, and is refused 403. */
  suspended: boolean;
  quota: TenantQuota;
}

interface Entry {
  key: VerifiedKey;
  epoch: number;
}

export interface VerifiedKeyCacheOptions {
  maxEntries?: number;
  /** A copy is re-read after this long even if no change was announced (belt and braces). */
  maxAgeMs?: number;
}

/**
 * Verified keys held in memory (issue 16: a refused request must cost no database round trip).
 * The database row still decides: a copy is the row as read, and it is dropped when the change
 * feed announces a change to its tenant or plan — whoever made the change, on whichever instance.
 * Copies are trusted only while the feed is current, so the bound is the feed's: a revocation
 * committed at t is refused everywhere by t + the feed's bound (PGlite: at once; Postgres: 1 s).
 * The instance that makes a change also drops its copies itself on commit (`forget`), so it never
 * waits for its own notification.
 *
 * Revoked keys, and keys of suspended tenants, are kept too (a flood of either costs nothing
 * either); unknown keys are the key directory's to refuse.
 */
export class VerifiedKeyCache implements ChangeSink {
  private readonly entries: LRUCache<string, Entry>;
  /** Reads in progress, shared by every request presenting the same key meanwhile — unless a change came since. */
  private readonly reading = new Map<string, { changes: number; key: Promise<VerifiedKey | undefined> }>();
  /** Bumped by every change; a read that saw a change arrive while it ran does not keep its copy. */
  private changes = 0;

  constructor(
    private readonly feed: ChangeFeed,
    options: VerifiedKeyCacheOptions = {},
  ) {
    this.entries = new LRUCache({ max: options.maxEntries ?? 10_000, ttl: options.maxAgeMs ?? 60_000 });
    feed.subscribe((payload) => this.forget(payload));
  }

  /** The key's verified copy, or the database's answer through `read` (shared by concurrent callers). */
  async lookup(keyHash: string, read: () => Promise<VerifiedKey | undefined>): Promise<VerifiedKey | undefined> {
    if (!this.feed.isCurrent()) {
      this.entries.clear(); // missed changes may be among them
      return read();
    }
    const entry = this.entries.get(keyHash);
    if (entry && entry.epoch === this.feed.epoch) return entry.key;
    // A read that began before the latest change may return the row as it was: only a lookup that
    // also began before that change may share it.
    const pending = this.reading.get(keyHash);
    if (pending && pending.changes === this.changes) return pending.key;
    const epoch = this.feed.epoch;
    const changesBefore = this.changes;
    const reading = { changes: changesBefore, key: read() };
    this.reading.set(keyHash, reading);
    const key = await reading.key.finally(() => {
      if (this.reading.get(keyHash) === reading) this.reading.delete(keyHash);
    });
    // A change that arrived while the row was read may be newer than the row: then nothing is kept.
    if (key && this.changes === changesBefore && epoch === this.feed.epoch && this.feed.isCurrent()) {
      this.entries.set(keyHash, { key, epoch });
    }
    return key;
  }

  /** The key's verified copy if this instance holds a trusted one, without reading anything. */
  peek(keyHash: string): VerifiedKey | undefined {
    if (!this.feed.isCurrent()) return undefined;
    const entry = this.entries.get(keyHash);
    return entry && entry.epoch === this.feed.epoch ? entry.key : undefined;
  }

  /** Drops the copies a change names: `tenant:<id>` or `plan:<name>`; anything else drops all. */
  forget(change: string): void {
    this.changes++;
    const [kind, id] = splitChange(change);
    if (kind !== "tenant" && kind !== "plan") {
      this.entries.clear();
      return;
    }
    for (const [hash, entry] of this.entries.entries()) {
      const named = kind === "tenant" ? entry.key.tenantId === id : entry.key.quota.plan === id;
      if (named) this.entries.delete(hash);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

function splitChange(change: string): [string, string] {
  const colon = change.indexOf(":");
  return colon < 0 ? [change, ""] : [change.slice(0, colon), change.slice(colon + 1)];
}
