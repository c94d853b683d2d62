import type { Config } from "../config/schema.js";
import { MatrixError } from "../core/errors.js";

/** A token bucket rule: `burst` at once, refilled at `perHour`. */
export interface BucketRule {
  burst: number;
  perHour: number;
}

/** Counts actions per key (an address, a phone number, a country); shared across instances when backed by Redis. */
export interface KeyedRateLimiter {
  /**
   * Takes `cost` tokens (default 1) for `key`; resolves with 0 when allowed, or the milliseconds until the
   * request would be. A request needs min(cost, burst) tokens and takes its whole cost, so one larger than
   * the burst is allowed from a full bucket and leaves it in debt, refilled at the hourly rate.
   */
  take(key: string, rule: BucketRule, cost?: number): Promise<number>;
}

interface Bucket {
  tokens: number;
  updated: number;
  /** When the bucket will be full again (then it is the same as an absent one). */
  fullAt: number;
  /** When it was last taken from, as the limiter's count of takes (for dropping the least recently used). */
  used: number;
}

/** Adds what the bucket refilled since it was last updated, up to its burst. */
function refill(bucket: Bucket, rule: BucketRule, now: number): void {
  bucket.tokens = Math.min(rule.burst, bucket.tokens + ((now - bucket.updated) * rule.perHour) / 3_600_000);
  bucket.updated = now;
}

/** Records when the bucket will be full again, from its tokens at its last update. */
function markFullAt(bucket: Bucket, rule: BucketRule): void {
  const ratePerMs = rule.perHour / 3_600_000;
  bucket.fullAt =
    ratePerMs > 0 ? bucket.updated + (rule.burst - bucket.tokens) / ratePerMs : Number.POSITIVE_INFINITY;
}

/**
 * Token buckets in this process's memory (limits hold per instance). The map is bounded: when it is full,
 * buckets that have refilled are dropped, then the least recently used tenth — never all at once, so that
 * flooding it with new keys cannot reset the buckets of recently limited keys.
 */
export class MemoryRateLimiter implements KeyedRateLimiter {
  /**
   * Keys stay where they were added: a bucket records when it was used instead of moving to the end. A
   * `delete` and `set` per take made V8 rebuild the map's table every few takes, in the old generation
   * once the map lived there: 12 MB of old-generation garbage in 15 s of v1 lookups (bench/README.md).
   */
  private readonly buckets = new Map<string, Bucket>();
  /** Takes so far: the clock of `Bucket.used`. */
  private takes = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {}

  async take(key: string, rule: BucketRule, cost = 1): Promise<number> {
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxKeys) this.evict(now);
      bucket = { tokens: rule.burst, updated: now, fullAt: now, used: 0 };
      this.buckets.set(key, bucket);
    } else {
      refill(bucket, rule, now);
    }
    bucket.used = ++this.takes;
    let wait = 0;
    const need = Math.min(cost, rule.burst);
    const ratePerMs = rule.perHour / 3_600_000;
    if (bucket.tokens >= need) bucket.tokens -= cost;
    else wait = ratePerMs > 0 ? Math.ceil((need - bucket.tokens) / ratePerMs) : 3_600_000;
    markFullAt(bucket, rule);
    return wait;
  }

  /**
   * Takes up to `max` more whole tokens for `key` if its bucket has them (never into debt); returns how many
   * (0 without a bucket: a key that `take` has not just charged). For tokens spent later elsewhere.
   */
  takeAhead(key: string, rule: BucketRule, max: number): number {
    const bucket = this.buckets.get(key);
    if (bucket === undefined || max <= 0) return 0;
    const n = Math.max(0, Math.min(max, Math.floor(bucket.tokens)));
    bucket.tokens -= n;
    markFullAt(bucket, rule);
    return n;
  }

  /**
   * Gives `n` tokens taken ahead and not spent back to `key`'s bucket (up to its burst). No bucket: it is full
   * already (or was dropped), nothing to give back to.
   */
  giveBack(key: string, rule: BucketRule, n: number): void {
    const bucket = this.buckets.get(key);
    if (bucket === undefined || n <= 0) return;
    refill(bucket, rule, this.now());
    bucket.tokens = Math.min(rule.burst, bucket.tokens + n);
    markFullAt(bucket, rule);
  }

  private evict(now: number): void {
    for (const [k, b] of this.buckets) if (b.fullAt <= now) this.buckets.delete(k);
    if (this.buckets.size < this.maxKeys) return;
    // The tenth used least recently: the ⌈maxKeys / 10⌉ smallest `used` (no two are equal).
    const used = Float64Array.from(this.buckets.values(), (b) => b.used).sort();
    const before = used[Math.ceil(this.maxKeys / 10)] ?? Number.POSITIVE_INFINITY;
    for (const [k, b] of this.buckets) if (b.used < before) this.buckets.delete(k);
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
      throw new MatrixError("M_LIMIT_EXCEEDED", "Too many requests for this address, try again later", {
        extra: { retry_after_ms: wait },
      });
    }
  }
}

/** A configured bucket, or no limit at all when `rate_limit.enabled` is false (test rigs). */
export function bucketRule(
  limits: Config["rate_limit"],
  bucket: { burst: number; per_hour: number },
): BucketRule {
  return limits.enabled ? { burst: bucket.burst, perHour: bucket.per_hour } : { burst: 1e12, perHour: 1e12 };
}
