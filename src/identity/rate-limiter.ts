import { MatrixError } from "./errors.js";

/** A token bucket rule: `burst` at once, refilled at `perHour`. */
export interface BucketRule {
  burst: number;
  perHour: number;
}

/** Counts actions per key (an address, a phone number, a country); shared across instances when backed by Redis. */
export interface KeyedRateLimiter {
  /** Takes one token for `key`; resolves with 0 when allowed, or the milliseconds until a token is available. */
  take(key: string, rule: BucketRule): Promise<number>;
}

interface Bucket {
  tokens: number;
  updated: number;
}

/** Token buckets in this process's memory (limits hold per instance). Old buckets are swept as they fill up. */
export class MemoryRateLimiter implements KeyedRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {}

  async take(key: string, rule: BucketRule): Promise<number> {
    const now = this.now();
    const ratePerMs = rule.perHour / 3_600_000;
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.sweep(now, ratePerMs, rule.burst);
      bucket = { tokens: rule.burst, updated: now };
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(rule.burst, bucket.tokens + (now - bucket.updated) * ratePerMs);
      bucket.updated = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return ratePerMs > 0 ? Math.ceil((1 - bucket.tokens) / ratePerMs) : 3_600_000;
  }

  /** Drops buckets that have refilled completely (they are equivalent to absent ones). */
  private sweep(now: number, ratePerMs: number, burst: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + (now - b.updated) * ratePerMs >= burst) this.buckets.delete(k);
    }
    if (this.buckets.size >= this.maxKeys) this.buckets.clear();
  }
}

/** Takes a token from each (key, rule) pair in order; throws 429 M_LIMIT_EXCEEDED on the first refusal. */
export async function enforceLimits(
  limiter: KeyedRateLimiter,
  checks: ReadonlyArray<readonly [string, BucketRule]>,
): Promise<void> {
  for (const [key, rule] of checks) {
    const wait = await limiter.take(key, rule);
    if (wait > 0) {
      throw new MatrixError(429, "M_LIMIT_EXCEEDED", "Too many requests for this address, try again later", {
        retry_after_ms: wait,
      });
    }
  }
}
