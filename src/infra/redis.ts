import type { Redis } from "ioredis";
import type { Config } from "../config/schema.js";
import type { Logger } from "../core/logger.js";
import { type KeyedRateLimiter, MemoryRateLimiter } from "./rate-limiter.js";
import { RedisRateLimiter } from "./redis-rate-limiter.js";

/**
 * Connects to `rate_limit.redis_url` when set. Limits fail open while Redis is away and apply again once it
 * is back, so an unreachable Redis at start is only a warning.
 */
export async function connectRedis(config: Config["rate_limit"], log: Logger): Promise<Redis | undefined> {
  if (!config.redis_url) return undefined;
  // ioredis is loaded only when Redis is configured.
  const { Redis } = await import("ioredis");
  const redis = new Redis(config.redis_url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: true,
  });
  redis.on("error", (err: Error) => log.warn({ err: err.message }, "Redis connection error"));
  await redis.connect().catch((err: Error) => log.warn({ err: err.message }, "Redis unreachable at start"));
  return redis;
}

/** Per-key buckets (per address, per sender): in this process, or shared by every instance through Redis. */
export function keyedLimiter(redis: Redis | undefined, log: Logger, now: () => number): KeyedRateLimiter {
  return redis ? new RedisRateLimiter(redis, log) : new MemoryRateLimiter(now);
}
