import type { Redis } from "ioredis";
import type { Logger } from "../core/logger.js";
import type { BucketRule, KeyedRateLimiter } from "./rate-limiter.js";

// A token bucket kept in a Redis hash, updated atomically, timed by the Redis server's clock so that every
// instance counts the same way. Returns the milliseconds to wait (0 = allowed).
const TAKE = `
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3]) or 1
local need = math.min(cost, burst)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = tonumber(b[1]) or burst
local updated = tonumber(b[2]) or now
tokens = math.min(burst, tokens + (now - updated) * rate)
local wait = 0
if tokens >= need then
  tokens = tokens - cost
elseif rate > 0 then
  wait = math.ceil((need - tokens) / rate)
else
  wait = 3600000
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'u', tostring(now))
local ttl = 86400000
if rate > 0 then ttl = math.ceil((burst - math.min(tokens, 0)) / rate) + 1000 end
redis.call('PEXPIRE', KEYS[1], ttl)
return wait
`;

/**
 * Token buckets shared by every instance through Redis (`rate_limit.redis_url`). When Redis cannot be reached
 * the request is allowed (fail open) and a warning is logged: a broken limiter must not stop validation.
 */
export class RedisRateLimiter implements KeyedRateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
    private readonly prefix = "seraph:rl:",
  ) {}

  async take(key: string, rule: BucketRule, cost = 1): Promise<number> {
    try {
      const rate = rule.perHour / 3_600_000;
      const wait = await this.redis.eval(TAKE, 1, this.prefix + key, rule.burst, rate, cost);
      return Number(wait);
    } catch (err) {
      this.log.warn(
        { err: (err as Error).message },
        "rate limiter unavailable (Redis); allowing the request",
      );
      return 0;
    }
  }
}
