import type { Config } from "../config/schema.js";
import { MatrixError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { type BucketRule, bucketRule, type KeyedRateLimiter } from "../infra/rate-limiter.js";
import type { LookupAlgorithm, LookupService, Mappings } from "./lookup.js";

/**
 * The lookup budget: how many hashes (v2) or threepids (v1) a caller may look up per hour. The spec names
 * rate limiting as the only defence against enumerating hashed phone numbers; without it one client can
 * check a whole numbering plan.
 */
export interface LookupBudgetSettings {
  /** v2 `lookup`: addresses per account (any algorithm, `none` included). */
  perAccount: BucketRule;
  /** v2 `lookup`: addresses per client IP, whatever the account (many accounts from one place). */
  perIp: BucketRule;
  /** v1 `lookup` and `bulk_lookup` (no authentication): threepids per client IP. */
  v1PerIp: BucketRule;
  /** Whether v2 `lookup` accepts `algorithm: "none"` (plain addresses). */
  allowPlaintext: boolean;
}

export type BudgetScope = "account" | "ip" | "v1_ip";

/** Where a refusal is reported: the metric and the log. */
export interface BudgetEvents {
  refused(scope: BudgetScope, key: string, cost: number, retryAfterMs: number): void;
}

export interface LookupCaller {
  userId?: string | undefined;
  ip: string;
}

/** What v1 lookup needs of the association service. */
export interface SignedLookup {
  lookupSignedJson(medium: string, address: string): Promise<string | undefined>;
}

/** Lookups with their budget charged first: v2 `hash_details`/`lookup`, v1 `lookup`/`bulk_lookup`. */
export class BudgetedLookup {
  constructor(
    private readonly settings: LookupBudgetSettings,
    private readonly lookups: LookupService,
    private readonly signed: SignedLookup,
    private readonly limiter: KeyedRateLimiter,
    private readonly events: BudgetEvents,
  ) {}

  async hashDetails(): Promise<{ lookup_pepper: string; algorithms: string[] }> {
    const details = await this.lookups.hashDetails();
    if (this.settings.allowPlaintext) return details;
    return { ...details, algorithms: details.algorithms.filter((a) => a !== "none") };
  }

  /** v2 `POST /lookup`: charged per account and per IP, by the number of addresses. */
  async lookup(
    caller: LookupCaller,
    addresses: readonly string[],
    algorithm: LookupAlgorithm,
    pepper: string,
  ): Promise<Mappings> {
    if (algorithm === "none" && !this.settings.allowPlaintext) {
      throw new MatrixError("M_INVALID_PARAM", "Unsupported algorithm: this server accepts sha256 only");
    }
    const cost = addresses.length;
    if (cost > 0) {
      if (caller.userId !== undefined) {
        await this.charge("account", caller.userId, this.settings.perAccount, cost);
      }
      await this.charge("ip", caller.ip, this.settings.perIp, cost);
    }
    return this.lookups.lookup(addresses, algorithm, pepper);
  }

  /** v1 `GET /lookup`: one threepid, charged to the client IP. */
  async lookupSignedJson(ip: string, medium: string, address: string): Promise<string | undefined> {
    await this.charge("v1_ip", ip, this.settings.v1PerIp, 1);
    return this.signed.lookupSignedJson(medium, address);
  }

  /** v1 `POST /bulk_lookup`: charged to the client IP by the number of threepids. */
  async bulkLookup(
    ip: string,
    threepids: ReadonlyArray<readonly [string, string]>,
  ): Promise<Array<[string, string, string]>> {
    const cost = threepids.length;
    if (cost > 0) await this.charge("v1_ip", ip, this.settings.v1PerIp, cost);
    return this.lookups.bulkLookup(threepids);
  }

  private async charge(scope: BudgetScope, key: string, rule: BucketRule, cost: number): Promise<void> {
    const wait = await this.limiter.take(`lookup:${scope}:${key}`, rule, cost);
    if (wait > 0) {
      this.events.refused(scope, key, cost, wait);
      throw new MatrixError("M_LIMIT_EXCEEDED", "Lookup budget exceeded, try again later", {
        extra: { retry_after_ms: wait },
      });
    }
  }
}

/**
 * Reports refusals: counts every one, logs one line per key at most every `quietMs` (a client hammering
 * its exhausted budget must not flood the log). The line names the scope, the account or IP, and numbers;
 * never the addresses or hashes asked for.
 */
export function budgetEvents(
  count: (scope: BudgetScope) => void,
  log: Logger,
  now: () => number = Date.now,
  quietMs = 10 * 60_000,
): BudgetEvents {
  const lastLogged = new Map<string, number>();
  return {
    refused(scope, key, cost, retryAfterMs) {
      count(scope);
      const id = `${scope}:${key}`;
      const t = now();
      const last = lastLogged.get(id);
      if (last !== undefined && t - last < quietMs) return;
      if (lastLogged.size >= 10_000) lastLogged.clear();
      lastLogged.set(id, t);
      log.warn(
        {
          scope,
          ...(scope === "account" ? { user_id: key } : { ip: key }),
          cost,
          retry_after_ms: retryAfterMs,
        },
        "lookup budget exhausted",
      );
    },
  };
}

/** Builds the budgeted lookups from `rate_limit.lookup_*` and `lookup.allow_plaintext`. */
export function createBudgetedLookup(
  config: Pick<Config, "rate_limit" | "lookup">,
  deps: {
    lookup: LookupService;
    signed: SignedLookup;
    limiter: KeyedRateLimiter;
    events: BudgetEvents;
  },
): BudgetedLookup {
  const limits = config.rate_limit;
  return new BudgetedLookup(
    {
      perAccount: bucketRule(limits, limits.lookup_per_account),
      perIp: bucketRule(limits, limits.lookup_per_ip),
      v1PerIp: bucketRule(limits, limits.v1_lookup_per_ip),
      allowPlaintext: config.lookup.allow_plaintext,
    },
    deps.lookup,
    deps.signed,
    deps.limiter,
    deps.events,
  );
}
