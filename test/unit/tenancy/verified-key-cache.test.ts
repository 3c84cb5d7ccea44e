import { describe, expect, it } from "vitest";
import type { ChangeFeed } from "../../../src/db/change-feed.js";
import { VerifiedKeyCache, type VerifiedKey } from "../../../src/tenancy/verified-key-cache.js";

/**
 * The verified-key cache (issue 16): keys read once are kept in memory, so a request — admitted or
 * refused — costs no database round trip; a change the feed announces drops exactly the copies it
 * names; nothing is trusted while the feed is not current or after it reconnected; and a read that
 * a change overtook is not kept. The feed here is a hand-written fake the test drives.
 */
class FakeFeed implements ChangeFeed {
  private readonly listeners: ((payload: string) => void)[] = [];
  current = true;
  epoch = 1;
  readonly boundMs = 1000;
  closed = false;

  subscribe(onChange: (payload: string) => void): void {
    this.listeners.push(onChange);
  }
  isCurrent(): boolean {
    return this.current;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  /** The database announced a change (drizzle/0011's payloads). */
  announce(payload: string): void {
    for (const listener of this.listeners) listener(payload);
  }
}

const TENANT_A = "00000000-0000-4000-8000-00000000000a";
const TENANT_B = "00000000-0000-4000-8000-00000000000b";

function verifiedKey(tenantId: string, keyNo: number, plan = "free", revoked = false): VerifiedKey {
  return {
    tenantId,
    keyId: `00000000-0000-4000-8000-0000000001${String(keyNo).padStart(2, "0")}`,
    project: "default",
    environment: "prod",
    scopes: ["owner"],
    expiresAt: null,
    graceEndsAt: null,
    cacheSecret: `secret-${tenantId.slice(-1)}`,
    revoked,
    suspended: false,
    quota: { plan, requestsPerMinute: 60, tokensPerMinute: null, maxConcurrency: null, keyRequestsPerMinute: null, weight: 1 },
  };
}

/** The database as the cache sees it: rows by key hash, and how often each was read. */
class Rows {
  readonly reads = new Map<string, number>();
  constructor(readonly rows: Map<string, VerifiedKey | undefined>) {}
  reader(hash: string): () => Promise<VerifiedKey | undefined> {
    return async () => {
      this.reads.set(hash, (this.reads.get(hash) ?? 0) + 1);
      return this.rows.get(hash);
    };
  }
  readsOf(hash: string): number {
    return this.reads.get(hash) ?? 0;
  }
}

/** A read the test finishes when it chooses (a slow query). */
function heldRead(value: VerifiedKey | undefined): { read: () => Promise<VerifiedKey | undefined>; finish(): void; calls(): number } {
  let calls = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return {
    read: async () => {
      calls++;
      await done;
      return value;
    },
    finish: () => finish(),
    calls: () => calls,
  };
}

function setup() {
  const feed = new FakeFeed();
  const cache = new VerifiedKeyCache(feed);
  const rows = new Rows(
    new Map<string, VerifiedKey | undefined>([
      ["a1", verifiedKey(TENANT_A, 1, "free")],
      ["a2", verifiedKey(TENANT_A, 2, "free")],
      ["b1", verifiedKey(TENANT_B, 3, "pro")],
      ["b2", verifiedKey(TENANT_B, 4, "pro")],
    ]),
  );
  const lookup = (hash: string) => cache.lookup(hash, rows.reader(hash));
  return { feed, cache, rows, lookup };
}

describe("VerifiedKeyCache", () => {
  it("reads a key once and answers from memory after that", async () => {
    const { cache, rows, lookup } = setup();
    expect(await lookup("a1")).toEqual(rows.rows.get("a1"));
    expect(await lookup("a1")).toEqual(rows.rows.get("a1"));
    expect(await lookup("a1")).toEqual(rows.rows.get("a1"));
    expect(rows.readsOf("a1")).toBe(1);
    expect(cache.size).toBe(1);
  });

  it("shares one read among concurrent lookups of the same key", async () => {
    const { cache } = setup();
    const slow = heldRead(verifiedKey(TENANT_A, 1));
    const lookups = Array.from({ length: 20 }, () => cache.lookup("a1", slow.read));
    slow.finish();
    const keys = await Promise.all(lookups);
    expect(slow.calls()).toBe(1);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]!.tenantId).toBe(TENANT_A);
    // …and keeps it: the next lookup reads nothing.
    const again = heldRead(undefined);
    expect(await cache.lookup("a1", again.read)).toBe(keys[0]);
    expect(again.calls()).toBe(0);
  });

  it("does not keep an unknown key (the key directory refuses those), so a key issued later is found", async () => {
    const { cache, rows, lookup } = setup();
    expect(await lookup("new")).toBeUndefined();
    rows.rows.set("new", verifiedKey(TENANT_A, 9));
    expect((await lookup("new"))?.keyId).toBe(verifiedKey(TENANT_A, 9).keyId);
    expect(rows.readsOf("new")).toBe(2);
    expect(cache.size).toBe(1);
  });

  it("drops only the named tenant's keys on tenant:<id>", async () => {
    const { feed, rows, lookup } = setup();
    for (const hash of ["a1", "a2", "b1", "b2"]) await lookup(hash);
    feed.announce(`tenant:${TENANT_A}`);
    for (const hash of ["a1", "a2", "b1", "b2"]) await lookup(hash);
    expect(["a1", "a2", "b1", "b2"].map((h) => rows.readsOf(h))).toEqual([2, 2, 1, 1]);
  });

  it("drops the keys of tenants on the named plan on plan:<name>, and only those", async () => {
    const { feed, rows, lookup } = setup();
    for (const hash of ["a1", "a2", "b1", "b2"]) await lookup(hash);
    feed.announce("plan:pro");
    feed.announce("plan:enterprise"); // nobody here is on it
    for (const hash of ["a1", "a2", "b1", "b2"]) await lookup(hash);
    expect(["a1", "a2", "b1", "b2"].map((h) => rows.readsOf(h))).toEqual([1, 1, 2, 2]);
  });

  it("drops everything on a payload it does not understand", async () => {
    const { feed, cache, rows, lookup } = setup();
    for (const hash of ["a1", "b1"]) await lookup(hash);
    feed.announce("something-new:42");
    expect(cache.size).toBe(0);
    for (const hash of ["a1", "b1"]) await lookup(hash);
    expect([rows.readsOf("a1"), rows.readsOf("b1")]).toEqual([2, 2]);
  });

  it("applies the new row after a change: a key revoked in the database is refused on the next lookup", async () => {
    const { feed, rows, lookup } = setup();
    expect((await lookup("a1"))?.revoked).toBe(false);
    rows.rows.set("a1", verifiedKey(TENANT_A, 1, "free", true));
    // Until the change is announced the copy stands (that is the feed's bound to keep) …
    expect((await lookup("a1"))?.revoked).toBe(false);
    feed.announce(`tenant:${TENANT_A}`);
    // … and once it is, the next lookup reads the row again.
    expect((await lookup("a1"))?.revoked).toBe(true);
  });

  it("keeps revoked keys too, so a flood of a revoked key costs no reads", async () => {
    const { rows, lookup } = setup();
    rows.rows.set("gone", verifiedKey(TENANT_A, 7, "free", true));
    for (let i = 0; i < 5; i++) expect((await lookup("gone"))?.revoked).toBe(true);
    expect(rows.readsOf("gone")).toBe(1);
  });

  it("trusts nothing while the feed is not current: every lookup reads, nothing is kept, and old copies are gone after", async () => {
    const { feed, cache, rows, lookup } = setup();
    await lookup("a1");
    expect(cache.size).toBe(1);
    feed.current = false;
    for (let i = 0; i < 3; i++) await lookup("a1");
    expect(rows.readsOf("a1")).toBe(4);
    expect(cache.size).toBe(0);
    // A change missed meanwhile: back to current, the copy held before the gap must not come back.
    rows.rows.set("a1", verifiedKey(TENANT_A, 1, "free", true));
    feed.current = true;
    expect((await lookup("a1"))?.revoked).toBe(true);
    expect(rows.readsOf("a1")).toBe(5);
    // Current again: kept again.
    await lookup("a1");
    expect(rows.readsOf("a1")).toBe(5);
  });

  it("does not keep a read that finishes after the feed stopped being current", async () => {
    const { feed, cache } = setup();
    const slow = heldRead(verifiedKey(TENANT_A, 1));
    const lookup = cache.lookup("a1", slow.read);
    feed.current = false;
    slow.finish();
    expect((await lookup)?.tenantId).toBe(TENANT_A);
    feed.current = true;
    expect(cache.size).toBe(0);
  });

  it("does not trust copies read under an older epoch (the feed reconnected and may have missed changes)", async () => {
    const { feed, rows, lookup } = setup();
    await lookup("a1");
    await lookup("b1");
    rows.rows.set("a1", verifiedKey(TENANT_A, 1, "free", true));
    feed.epoch++;
    expect((await lookup("a1"))?.revoked).toBe(true);
    await lookup("b1");
    expect([rows.readsOf("a1"), rows.readsOf("b1")]).toEqual([2, 2]);
    // Copies read under the new epoch are trusted.
    await lookup("a1");
    await lookup("b1");
    expect([rows.readsOf("a1"), rows.readsOf("b1")]).toEqual([2, 2]);
  });

  it("does not keep a read that started before the feed reconnected", async () => {
    const { feed, cache } = setup();
    const slow = heldRead(verifiedKey(TENANT_A, 1));
    const lookup = cache.lookup("a1", slow.read);
    feed.epoch++;
    slow.finish();
    await lookup;
    const next = heldRead(verifiedKey(TENANT_A, 1));
    const after = cache.lookup("a1", next.read);
    next.finish();
    await after;
    expect(next.calls()).toBe(1);
  });

  it("does not keep a read that a change overtook (the row it read may be older than the change)", async () => {
    const { feed, cache } = setup();
    // The read sees the key before its revocation commits; the revocation is announced before the read returns.
    const slow = heldRead(verifiedKey(TENANT_A, 1, "free", false));
    const first = cache.lookup("a1", slow.read);
    feed.announce(`tenant:${TENANT_A}`);
    slow.finish();
    expect((await first)?.revoked).toBe(false); // that request began before the change: it may pass
    // The next one must not be served the overtaken copy.
    const fresh = heldRead(verifiedKey(TENANT_A, 1, "free", true));
    const second = cache.lookup("a1", fresh.read);
    fresh.finish();
    expect((await second)?.revoked).toBe(true);
    expect(fresh.calls()).toBe(1);
    expect(cache.size).toBe(1);
  });

  it("does not keep a read overtaken by a change to another tenant either (changes are not matched to reads)", async () => {
    const { feed, cache } = setup();
    const slow = heldRead(verifiedKey(TENANT_A, 1));
    const first = cache.lookup("a1", slow.read);
    feed.announce(`tenant:${TENANT_B}`);
    slow.finish();
    await first;
    expect(cache.size).toBe(0);
  });

  it("does not hand a lookup that starts after a change the result of a read that started before it", async () => {
    // The instance that revokes a key must refuse it at once (issue 16: 0 s there). A read of the
    // key may be under way when the revocation commits: it saw the row before the change. A
    // request arriving after the change (after the admin's 204) must not join that read.
    const { feed, cache } = setup();
    const before = heldRead(verifiedKey(TENANT_A, 1, "free", false));
    const first = cache.lookup("a1", before.read);
    feed.announce(`tenant:${TENANT_A}`); // the revocation committed; this instance forgot the key
    const after = heldRead(verifiedKey(TENANT_A, 1, "free", true));
    const second = cache.lookup("a1", after.read);
    before.finish();
    after.finish();
    await first;
    expect((await second)?.revoked).toBe(true);
  });
});
