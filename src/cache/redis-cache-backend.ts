import type { Redis } from "ioredis";
import type { SharedCacheBackend } from "./tenant-caches.js";

/** The tenant caches' shared level in Redis: plain keys with a TTL, purged by prefix with SCAN. */
export class RedisCacheBackend implements SharedCacheBackend {
  constructor(private readonly redis: Redis) {}

  get(key: string): Promise<string | null> {
    return this.redis.get(key);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(key, value, "PX", ttlMs);
  }

  async deleteByPrefix(prefix: string): Promise<number> {
    if (/[*?[\]\\]/.test(prefix)) throw new TypeError("A cache prefix must not contain glob characters");
    let removed = 0;
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      if (keys.length > 0) removed += await this.redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
    return removed;
  }
}
