import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from "rate-limiter-flexible";
import type { Redis } from "ioredis";

/**
 * Where admission counters live. In memory they hold for one instance; with Redis (REDIS_URL) they
 * are shared, so per-tenant limits hold in total across every instance behind a load balancer.
 * Rate windows use `rate-limiter-flexible`; the in-flight counter is Fence's own (a limiter of
 * points per duration cannot express "at most N at once").
 */
export interface CounterStore {
  /** A fixed-window limiter of `points` per `durationSec`, for keys with the given prefix. */
  rateLimiter(prefix: string, points: number, durationSec: number): RateLimiterAbstract;
  /** Takes one in-flight slot for `key` if fewer than `max` are taken; false when full. */
  acquireSlot(key: string, max: number): Promise<boolean>;
  releaseSlot(key: string): Promise<void>;
  close(): Promise<void>;
}

export class MemoryCounterStore implements CounterStore {
  private readonly limiters = new Map<string, RateLimiterAbstract>();
  private readonly slots = new Map<string, number>();

  rateLimiter(prefix: string, points: number, durationSec: number): RateLimiterAbstract {
    const id = `${prefix}:${points}:${durationSec}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      limiter = new RateLimiterMemory({ keyPrefix: id, points, duration: durationSec });
      this.limiters.set(id, limiter);
    }
    return limiter;
  }

  async acquireSlot(key: string, max: number): Promise<boolean> {
    const taken = this.slots.get(key) ?? 0;
    if (taken >= max) return false;
    this.slots.set(key, taken + 1);
    return true;
  }

  async releaseSlot(key: string): Promise<void> {
    const taken = (this.slots.get(key) ?? 1) - 1;
    if (taken <= 0) this.slots.delete(key);
    else this.slots.set(key, taken);
  }

  async close(): Promise<void> {}
}

/**
 * In-flight slots in Redis: an atomic check-and-increment script, and a TTL refreshed on every
 * acquire so that slots held by a crashed instance drain by themselves instead of blocking the
 * tenant forever.
 */
const ACQUIRE = `
local taken = tonumber(redis.call('GET', KEYS[1]) or '0')
if taken >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;
const RELEASE = `
local taken = tonumber(redis.call('GET', KEYS[1]) or '0')
if taken <= 1 then redis.call('DEL', KEYS[1]) else redis.call('DECR', KEYS[1]) end
return 1`;

export class RedisCounterStore implements CounterStore {
  private readonly limiters = new Map<string, RateLimiterAbstract>();

  constructor(
    private readonly redis: Redis,
    private readonly slotTtlMs = 120_000,
  ) {}

  rateLimiter(prefix: string, points: number, durationSec: number): RateLimiterAbstract {
    const id = `fence:${prefix}:${points}:${durationSec}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      limiter = new RateLimiterRedis({ storeClient: this.redis, keyPrefix: id, points, duration: durationSec });
      this.limiters.set(id, limiter);
    }
    return limiter;
  }

  async acquireSlot(key: string, max: number): Promise<boolean> {
    return (await this.redis.eval(ACQUIRE, 1, `fence:slots:${key}`, max, this.slotTtlMs)) === 1;
  }

  async releaseSlot(key: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, `fence:slots:${key}`);
  }

  /** The connection is the instance's (see redis.ts), closed by its owner. */
  async close(): Promise<void> {}
}
