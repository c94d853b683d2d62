/**
 * Server-name resolution (S2S spec "Resolving server names"), with caching.
 *
 * | server name                       | TCP target                          | Host header          | TLS name |
 * |-----------------------------------|-------------------------------------|----------------------|----------|
 * | IP literal [:port]                | the IP, port or 8448                | the server name      | (none: cert for the IP) |
 * | host:port                         | host (A/AAAA), port                 | the server name      | host |
 * | host, well-known → IP[:port]      | the IP, port or 8448                | the m.server value   | (none) |
 * | host, well-known → d:port         | d (A/AAAA), port                    | d:port               | d |
 * | host, well-known → d              | SRV _matrix-fed / _matrix of d, else d:8448 | d            | d |
 * | host, no well-known               | SRV _matrix-fed / _matrix of host, else host:8448 | host   | host |
 *
 * Well-known results are cached per {@link wellKnownCacheMs} (failures 1 h); SRV answers (including "none")
 * are cached for {@link SRV_CACHE_MS}. Concurrent lookups of the same name share one request. Caches are
 * bounded (oldest entries are dropped first), since server names come from untrusted requests.
 */
import { type DnsResolver, isNoRecordsError, type SrvRecord } from "./dns.js";
import { FederationError } from "./errors.js";
import { isValidDnsName, parseServerName } from "./server-name.js";
import type { WellKnownLookup, WellKnownResult } from "./well-known.js";

export const DEFAULT_FEDERATION_PORT = 8448;
export const SRV_CACHE_MS = 10 * 60_000;
export const DEFAULT_MAX_CACHE_ENTRIES = 10_000;

export interface ResolvedServer {
  /** Where to open the TCP connection: a DNS name (resolved with A/AAAA) or a bare IP address. */
  targetHost: string;
  targetPort: number;
  /** The `Host` header to send. */
  hostHeader: string;
  /** The name the certificate must match and SNI to send; null for IP literals (certificate for the IP, no SNI). */
  tlsServerName: string | null;
  /** Which rule produced this target (for logs and tests). */
  via: "ip_literal" | "explicit_port" | "srv_matrix_fed" | "srv_matrix" | "default_port";
  /** True if a `.well-known` delegation was followed. */
  delegated: boolean;
}

export interface ServerNameResolverOptions {
  dns: DnsResolver;
  wellKnown: WellKnownLookup;
  now?: () => number;
  /** For weighted SRV selection; defaults to Math.random. */
  random?: () => number;
  maxCacheEntries?: number;
  logger?: { debug(obj: object, msg: string): void };
}

class TtlCache<V> {
  readonly #map = new Map<string, { value: V; expires: number }>();
  constructor(
    readonly max: number,
    readonly now: () => number,
  ) {}
  get(key: string): V | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    if (e.expires <= this.now()) {
      this.#map.delete(key);
      return undefined;
    }
    return e.value;
  }
  set(key: string, value: V, ttlMs: number): void {
    this.#map.delete(key);
    if (this.#map.size >= this.max) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
    this.#map.set(key, { value, expires: this.now() + ttlMs });
  }
  clear(): void {
    this.#map.clear();
  }
}

type SrvAnswer = { kind: "none" } | { kind: "unavailable" } | { kind: "records"; records: SrvRecord[] };

export class ServerNameResolver {
  readonly #dns: DnsResolver;
  readonly #wellKnownLookup: WellKnownLookup;
  readonly #random: () => number;
  readonly #logger: ServerNameResolverOptions["logger"];
  readonly #wellKnownCache: TtlCache<WellKnownResult>;
  readonly #srvCache: TtlCache<SrvAnswer>;
  readonly #inflight = new Map<string, Promise<WellKnownResult>>();

  constructor(options: ServerNameResolverOptions) {
    const now = options.now ?? Date.now;
    const max = options.maxCacheEntries ?? DEFAULT_MAX_CACHE_ENTRIES;
    this.#dns = options.dns;
    this.#wellKnownLookup = options.wellKnown;
    this.#random = options.random ?? Math.random;
    this.#logger = options.logger;
    this.#wellKnownCache = new TtlCache(max, now);
    this.#srvCache = new TtlCache(max, now);
  }

  clearCache(): void {
    this.#wellKnownCache.clear();
    this.#srvCache.clear();
  }

  /** Resolves a server name. Throws FederationError `invalid_server_name` (no network) or `unreachable`. */
  async resolve(serverName: string): Promise<ResolvedServer> {
    const parsed = parseServerName(serverName);
    if (parsed === null) throw new FederationError("invalid_server_name", "invalid server name");
    if (parsed.ipLiteral) {
      return direct(
        parsed.host,
        parsed.port ?? DEFAULT_FEDERATION_PORT,
        serverName,
        null,
        "ip_literal",
        false,
      );
    }
    if (parsed.port !== undefined) {
      return direct(parsed.host, parsed.port, serverName, parsed.host, "explicit_port", false);
    }
    const wk = await this.#wellKnown(parsed.host);
    const delegated = wk.server === null ? null : parseServerName(wk.server);
    if (wk.server !== null && delegated !== null) {
      if (delegated.ipLiteral) {
        return direct(
          delegated.host,
          delegated.port ?? DEFAULT_FEDERATION_PORT,
          wk.server,
          null,
          "ip_literal",
          true,
        );
      }
      if (delegated.port !== undefined) {
        return direct(delegated.host, delegated.port, wk.server, delegated.host, "explicit_port", true);
      }
      return this.#viaSrv(delegated.host, true);
    }
    return this.#viaSrv(parsed.host, false);
  }

  async #viaSrv(hostname: string, delegated: boolean): Promise<ResolvedServer> {
    for (const [prefix, via] of [
      ["_matrix-fed._tcp.", "srv_matrix_fed"],
      ["_matrix._tcp.", "srv_matrix"],
    ] as const) {
      const answer = await this.#srv(`${prefix}${hostname}`);
      if (answer.kind === "unavailable") {
        throw new FederationError(
          "unreachable",
          `SRV record for ${hostname} says the service is unavailable`,
        );
      }
      if (answer.kind === "records") {
        const r = this.#pick(answer.records);
        return direct(r.name, r.port, hostname, hostname, via, delegated);
      }
    }
    return direct(hostname, DEFAULT_FEDERATION_PORT, hostname, hostname, "default_port", delegated);
  }

  async #wellKnown(hostname: string): Promise<WellKnownResult> {
    const cached = this.#wellKnownCache.get(hostname);
    if (cached !== undefined) return cached;
    let pending = this.#inflight.get(hostname);
    if (pending === undefined) {
      pending = this.#wellKnownLookup(hostname)
        .then((result) => {
          this.#wellKnownCache.set(hostname, result, result.cacheMs);
          this.#logger?.debug(
            { hostname, server: result.server, cacheMs: result.cacheMs, error: result.error },
            "well-known lookup",
          );
          return result;
        })
        .finally(() => this.#inflight.delete(hostname));
      this.#inflight.set(hostname, pending);
    }
    return pending;
  }

  async #srv(name: string): Promise<SrvAnswer> {
    const cached = this.#srvCache.get(name);
    if (cached !== undefined) return cached;
    let records: SrvRecord[];
    try {
      records = await this.#dns.resolveSrv(name);
    } catch (e) {
      if (isNoRecordsError(e)) {
        const none: SrvAnswer = { kind: "none" };
        this.#srvCache.set(name, none, SRV_CACHE_MS);
        return none;
      }
      // Timeouts, SERVFAIL, ...: treat as "no SRV" for this attempt, but do not cache.
      this.#logger?.debug({ name, code: (e as { code?: unknown })?.code }, "SRV lookup failed");
      return { kind: "none" };
    }
    const answer = classifySrv(records);
    this.#srvCache.set(name, answer, SRV_CACHE_MS);
    return answer;
  }

  /** RFC 2782: lowest priority first, then weighted random choice. */
  #pick(records: SrvRecord[]): SrvRecord {
    const best = Math.min(...records.map((r) => r.priority));
    const candidates = records.filter((r) => r.priority === best);
    const total = candidates.reduce((sum, r) => sum + r.weight, 0);
    if (total === 0) return candidates[0]!;
    let x = this.#random() * total;
    for (const r of candidates) {
      x -= r.weight;
      if (x < 0) return r;
    }
    return candidates[candidates.length - 1]!;
  }
}

function classifySrv(records: SrvRecord[]): SrvAnswer {
  const valid: SrvRecord[] = [];
  let sawDot = false;
  for (const r of records) {
    const name = r.name.endsWith(".") ? r.name.slice(0, -1) : r.name;
    if (name === "") {
      sawDot = true;
      continue;
    }
    if (!isValidDnsName(name) || !Number.isInteger(r.port) || r.port < 1 || r.port > 65535) continue;
    valid.push({
      name,
      port: r.port,
      priority: Number.isFinite(r.priority) ? r.priority : 0,
      weight: Number.isFinite(r.weight) && r.weight > 0 ? r.weight : 0,
    });
  }
  if (valid.length > 0) return { kind: "records", records: valid };
  return sawDot ? { kind: "unavailable" } : { kind: "none" };
}

function direct(
  targetHost: string,
  targetPort: number,
  hostHeader: string,
  tlsServerName: string | null,
  via: ResolvedServer["via"],
  delegated: boolean,
): ResolvedServer {
  return { targetHost, targetPort, hostHeader, tlsServerName, via, delegated };
}
