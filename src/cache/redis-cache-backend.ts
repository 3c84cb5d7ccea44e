import type { Redis } from "ioredis";
import type { SharedCacheBackend } from "./tenant-caches.js";

/**
 * Stores the value, and indexes its key in the group's sorted set (scored by expiry time, so
 * expired members are trimmed as new ones come). The index lives as long as its longest entry.
 * One script: an entry is never written without being indexed, so a purge finds it.
 */
const SET_INDEXED = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1`;

const DELETE_BATCH = 500;

/** The tenant caches' shared level in Redis: plain keys with a TTL, each indexed in its group. */
export class RedisCacheBackend implements SharedCacheBackend {
  constructor(private readonly redis: Redis) {}

  get(key: string): Promise<string | null> {
    return this.redis.get(key);
  }

  async set(key: string, value: string, ttlMs: number, group: string): Promise<void> {
    const now = Date.now();
    await this.redis.eval(SET_INDEXED, 2, key, indexKey(group), value, ttlMs, now + ttlMs, now);
  }

  /** Deletes what the group's index names: work in proportion to the tenant's entries, not to Redis's size. */
  async deleteGroup(group: string): Promise<number> {
    const index = indexKey(group);
    const keys = await this.redis.zrange(index, "0", "-1");
    let removed = 0;
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      // UNLINK: the memory is reclaimed off Redis's main thread, so a large purge blocks no one.
      removed += await this.redis.unlink(keys.slice(i, i + DELETE_BATCH));
    }
    await this.redis.unlink(index);
    return removed;
  }
}

/** `#` is never in a cache name, so the index cannot collide with an entry of the group. */
function indexKey(group: string): string {
  return `${group}#index`;
}
