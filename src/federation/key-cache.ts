/**
 * ServerKeyCache: homeserver signing keys (`/_matrix/key/v2/server`) for checking X-Matrix requests.
 *
 * Rules:
 * - One entry per server name, kept until the server's `valid_until_ts`, clamped to [`minTtlMs`, `maxTtlMs`]
 *   (default 5 min .. 24 h) after the fetch: a server announcing a short (or past) validity cannot make us fetch
 *   on every request, and a long one cannot pin its keys for ever.
 * - A key verifies only while `valid_until_ts` (capped at fetch time + 7 days, as the S2S spec requires) is not
 *   in the past. An expired or unknown key id triggers a refetch, but at most once per `minRefetchIntervalMs`
 *   (default 60 s) per server, so made-up key ids cannot be used to hammer a server through us.
 * - A failed fetch is remembered for `failureBackoffMs` (default 30 s): requests in that window get the same error
 *   without a new fetch. A failed refresh keeps the previous entry, whose keys stay usable until their own
 *   `valid_until_ts`.
 * - Concurrent lookups for one server share a single fetch. Public keys are imported as KeyObjects once per fetch.
 * - At most `maxServers` servers are kept (least recently used are dropped first).
 * - Only `ed25519:` keys are kept; other algorithms are unknown key ids.
 */
import type { KeyObject } from "node:crypto";
import { decodeBase64 } from "../crypto/base64.js";
import { publicKeyObject } from "../crypto/ed25519.js";
import type { ServerKeys } from "./client.js";
import { FederationError } from "./errors.js";
import { parseServerName } from "./server-name.js";

/** Where keys come from: {@link HomeserverClient} in production, a stub in tests. */
export interface ServerKeySource {
  getServerKeys(serverName: string): Promise<ServerKeys>;
}

export interface ServerKeyCacheOptions {
  /** Clock (default Date.now). */
  now?: () => number;
  /** Shortest time an entry is kept, whatever `valid_until_ts` says (default 5 min). */
  minTtlMs?: number;
  /** Longest time an entry is kept before it is refetched (default 24 h). */
  maxTtlMs?: number;
  /** Keys are never trusted longer than this after their fetch (default 7 days, per the S2S spec). */
  maxKeyValidityMs?: number;
  /** Minimum time between two fetches for one server triggered by an unknown or expired key id (default 60 s). */
  minRefetchIntervalMs?: number;
  /** After a failed fetch, the error is returned without fetching again for this long (default 30 s). */
  failureBackoffMs?: number;
  /** Maximum number of servers kept (default 1000). */
  maxServers?: number;
}

export type VerifyKeyLookup =
  /** The key is known and valid at the requested time. */
  | { status: "ok"; key: KeyObject; validUntilTs: number }
  /** The server does not (or no longer) list this key id in `verify_keys`. */
  | { status: "unknown_key" }
  /** The key is listed, but its `valid_until_ts` is before the requested time. */
  | { status: "expired_key"; validUntilTs: number };

interface CachedKeys {
  keys: Map<string, KeyObject>;
  /** `valid_until_ts`, capped at fetchedAt + maxKeyValidityMs. */
  validUntilTs: number;
  fetchedAt: number;
  /** When the entry must be refreshed. */
  expiresAt: number;
}

type FetchOutcome = { ok: true } | { ok: false; error: FederationError };

interface ServerState {
  entry?: CachedKeys;
  lastAttemptAt?: number;
  failure?: { at: number; error: FederationError };
  inflight?: Promise<FetchOutcome>;
}

export const KEY_CACHE_DEFAULTS = {
  minTtlMs: 5 * 60_000,
  maxTtlMs: 24 * 3600_000,
  maxKeyValidityMs: 7 * 24 * 3600_000,
  minRefetchIntervalMs: 60_000,
  failureBackoffMs: 30_000,
  maxServers: 1000,
} as const;

export class ServerKeyCache {
  readonly #source: ServerKeySource;
  readonly #now: () => number;
  readonly #minTtlMs: number;
  readonly #maxTtlMs: number;
  readonly #maxKeyValidityMs: number;
  readonly #minRefetchIntervalMs: number;
  readonly #failureBackoffMs: number;
  readonly #maxServers: number;
  /** Insertion order = least recently used first. */
  readonly #servers = new Map<string, ServerState>();

  constructor(source: ServerKeySource, options: ServerKeyCacheOptions = {}) {
    this.#source = source;
    this.#now = options.now ?? Date.now;
    this.#minTtlMs = options.minTtlMs ?? KEY_CACHE_DEFAULTS.minTtlMs;
    this.#maxTtlMs = Math.max(this.#minTtlMs, options.maxTtlMs ?? KEY_CACHE_DEFAULTS.maxTtlMs);
    this.#maxKeyValidityMs = options.maxKeyValidityMs ?? KEY_CACHE_DEFAULTS.maxKeyValidityMs;
    this.#minRefetchIntervalMs = options.minRefetchIntervalMs ?? KEY_CACHE_DEFAULTS.minRefetchIntervalMs;
    this.#failureBackoffMs = options.failureBackoffMs ?? KEY_CACHE_DEFAULTS.failureBackoffMs;
    this.#maxServers = Math.max(1, options.maxServers ?? KEY_CACHE_DEFAULTS.maxServers);
  }

  /** Number of servers currently held. */
  get size(): number {
    return this.#servers.size;
  }

  /** Forgets everything about one server (keys, rate-limit and failure state). */
  delete(serverName: string): void {
    this.#servers.delete(serverName);
  }

  /**
   * The public key `keyId` of `serverName`, valid at time `at` (default: the cache's clock).
   * Fetches when needed (see the module comment for the limits). Rejects with a {@link FederationError} when the
   * keys could not be fetched and nothing usable is cached; `unknown_key`/`expired_key` are results, not errors.
   */
  async getVerifyKey(serverName: string, keyId: string, at?: number): Promise<VerifyKeyLookup> {
    if (typeof serverName !== "string" || parseServerName(serverName) === null) {
      throw new FederationError("invalid_server_name", "server keys: invalid server name");
    }
    // Keep the state object across awaits: if it is evicted meanwhile, the fetch still lands in it.
    const state = this.#touch(serverName);
    let tried = false;
    let fetchError: FederationError | undefined;
    for (;;) {
      const now = this.#now();
      const when = at ?? now;
      const entry = state.entry;
      const fresh = entry !== undefined && entry.expiresAt > now;
      const key = entry?.keys.get(keyId);
      const valid = entry !== undefined && key !== undefined && entry.validUntilTs >= when;
      if (valid && fresh) return { status: "ok", key, validUntilTs: entry.validUntilTs };

      if (!tried) {
        tried = true;
        let outcome: FetchOutcome | undefined;
        if (state.inflight !== undefined) outcome = await state.inflight;
        else if (this.#mayFetch(state, fresh, now)) outcome = await this.#fetch(serverName, state);
        else if (!fresh && state.failure !== undefined) outcome = { ok: false, error: state.failure.error };
        if (outcome !== undefined) {
          if (!outcome.ok) fetchError = outcome.error;
          continue;
        }
      }

      // A stale entry (refresh failed or backing off) still serves keys within their own validity.
      if (valid) return { status: "ok", key, validUntilTs: entry.validUntilTs };
      if (fetchError !== undefined) throw fetchError;
      if (entry === undefined) {
        throw new FederationError("unreachable", `server keys of ${serverName}: not available`);
      }
      if (key !== undefined) return { status: "expired_key", validUntilTs: entry.validUntilTs };
      return { status: "unknown_key" };
    }
  }

  #mayFetch(state: ServerState, fresh: boolean, now: number): boolean {
    if (fresh) {
      // Fresh entry, but the key id is unknown or expired: rate-limited refetch.
      return state.lastAttemptAt === undefined || now - state.lastAttemptAt >= this.#minRefetchIntervalMs;
    }
    return state.failure === undefined || now - state.failure.at >= this.#failureBackoffMs;
  }

  #fetch(serverName: string, state: ServerState): Promise<FetchOutcome> {
    state.lastAttemptAt = this.#now();
    const p: Promise<FetchOutcome> = Promise.resolve()
      .then(() => this.#source.getServerKeys(serverName))
      .then(
        (keys): FetchOutcome => {
          state.entry = this.#entryFrom(keys);
          state.failure = undefined;
          return { ok: true };
        },
        (e: unknown): FetchOutcome => {
          const error =
            e instanceof FederationError
              ? e
              : new FederationError("unreachable", `server keys of ${serverName}: unexpected failure`, {
                  cause: e,
                });
          state.failure = { at: this.#now(), error };
          return { ok: false, error };
        },
      )
      .finally(() => {
        if (state.inflight === p) state.inflight = undefined;
      });
    state.inflight = p;
    return p;
  }

  #entryFrom(res: ServerKeys): CachedKeys {
    const now = this.#now();
    const keys = new Map<string, KeyObject>();
    for (const [keyId, b64] of Object.entries(res.verifyKeys ?? {})) {
      if (!keyId.startsWith("ed25519:") || typeof b64 !== "string") continue;
      const raw = decodeBase64(b64);
      if (raw === null || raw.length !== 32) continue;
      try {
        keys.set(keyId, publicKeyObject(raw));
      } catch {
        // not a usable key: treat as unknown
      }
    }
    const serverValidUntil = Number.isFinite(res.validUntilTs) ? res.validUntilTs : 0;
    const validUntilTs = Math.min(serverValidUntil, now + this.#maxKeyValidityMs);
    const ttl = Math.min(Math.max(serverValidUntil - now, this.#minTtlMs), this.#maxTtlMs);
    return { keys, validUntilTs, fetchedAt: now, expiresAt: now + ttl };
  }

  /** Gets or creates the state of a server and marks it most recently used, evicting the oldest over the cap. */
  #touch(serverName: string): ServerState {
    let state = this.#servers.get(serverName);
    if (state === undefined) state = {};
    else this.#servers.delete(serverName);
    this.#servers.set(serverName, state);
    while (this.#servers.size > this.#maxServers) {
      const oldest = this.#servers.keys().next();
      if (oldest.done) break;
      this.#servers.delete(oldest.value);
    }
    return state;
  }
}
