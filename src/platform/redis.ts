import type { Redis } from "ioredis";
import type { Logger } from "../observability/logger.js";

/**
 * The one Redis connection of an instance (REDIS_URL), shared by the admission counters and the
 * tenant caches. No offline queue: while Redis is down a command fails at once, and each user
 * falls back (local counters, a cache miss) instead of every request waiting for reconnects.
 */
export async function connectRedis(url: string, logger: Logger): Promise<Redis> {
  const { Redis } = await import("ioredis");
  const redis = new Redis(url, { maxRetriesPerRequest: 2, enableOfflineQueue: false, lazyConnect: true });
  let warned = false;
  redis.on("error", (error: Error) => {
    if (!warned) logger.warn({ err: error }, "Redis (REDIS_URL) unreachable; using this instance's counters and caches");
    warned = true;
  });
  redis.on("ready", () => {
    warned = false;
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Error(`Cannot connect to Redis at REDIS_URL: ${(error as Error).message}`, { cause: error });
  }
  return redis;
}
