/**
 * `GET https://<hostname>/.well-known/matrix/server` (spec "Resolving server names", step 3).
 *
 * Every hop goes through the guarded agent. Redirects (301/302/303/307/308) are followed at most
 * {@link MAX_WELL_KNOWN_REDIRECTS} times, https only, without loops. Bodies are capped at 64 KiB.
 * The function never throws: failures come back as `{ server: null }` with the failure cache period.
 */
import { FederationError } from "./errors.js";
import type { GuardedHttp } from "./http.js";
import { formatHost, parseServerName } from "./server-name.js";

export const MAX_WELL_KNOWN_BYTES = 64 * 1024;
export const MAX_WELL_KNOWN_REDIRECTS = 5;
/** Cache period when the response has no usable `Cache-Control: max-age` (spec: 24 h). */
export const WELL_KNOWN_DEFAULT_CACHE_MS = 24 * 3600_000;
/** Upper bound for a response's own cache period (spec: 48 h). */
export const WELL_KNOWN_MAX_CACHE_MS = 48 * 3600_000;
/** Lower bound for a response's own cache period (as Synapse), so `max-age=0` cannot make us refetch per request. */
export const WELL_KNOWN_MIN_CACHE_MS = 5 * 60_000;
/** Cache period of failures (spec: "up to an hour"). */
export const WELL_KNOWN_FAILURE_CACHE_MS = 3600_000;

export interface WellKnownResult {
  /** The validated `m.server` value, or null if the lookup failed. */
  server: string | null;
  /** How long to cache this result. */
  cacheMs: number;
  /** Why it failed (for debug logs). */
  error?: string;
}

export type WellKnownLookup = (hostname: string) => Promise<WellKnownResult>;

/**
 * Cache period from a `Cache-Control` header: `max-age` clamped to [5 min, 48 h]; `no-store`/`no-cache` count as
 * `max-age=0` (so 5 min); absent or unparsable → 24 h. (`Expires` is ignored.)
 */
export function wellKnownCacheMs(cacheControl: string | string[] | undefined): number {
  const text = Array.isArray(cacheControl) ? cacheControl.join(",") : (cacheControl ?? "");
  let seconds: number | undefined;
  for (const raw of text.split(",")) {
    const directive = raw.trim().toLowerCase();
    if (directive === "no-store" || directive === "no-cache") seconds = 0;
    const m = /^max-age\s*=\s*"?([0-9]{1,12})"?$/.exec(directive);
    if (m && seconds === undefined) seconds = Number(m[1]);
  }
  if (seconds === undefined) return WELL_KNOWN_DEFAULT_CACHE_MS;
  return Math.min(WELL_KNOWN_MAX_CACHE_MS, Math.max(WELL_KNOWN_MIN_CACHE_MS, seconds * 1000));
}

/** Extracts and validates `m.server` from a well-known body; returns null if invalid. */
export function parseWellKnownBody(body: Buffer): string | null {
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    return null;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return null;
  const server = (json as Record<string, unknown>)["m.server"];
  if (typeof server !== "string" || parseServerName(server) === null) return null;
  return server;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export interface WellKnownFetchOptions {
  /** TEST ONLY: port for the first request instead of 443. */
  port?: number;
}

/** Fetches and validates the well-known delegation for `hostname` (a DNS name, not an IP literal). */
export async function fetchWellKnown(
  http: GuardedHttp,
  hostname: string,
  options: WellKnownFetchOptions = {},
): Promise<WellKnownResult> {
  const fail = (error: string): WellKnownResult => ({
    server: null,
    cacheMs: WELL_KNOWN_FAILURE_CACHE_MS,
    error,
  });
  let url = new URL(`https://${formatHost(hostname, options.port)}/.well-known/matrix/server`);
  let hostHeader = hostname;
  const visited = new Set<string>([url.href]);
  try {
    for (let hop = 0; ; hop++) {
      const res = await http.request(
        { url, hostHeader, method: "GET", maxBytes: MAX_WELL_KNOWN_BYTES },
        `well-known for ${hostname}`,
      );
      if (REDIRECT_STATUSES.has(res.status)) {
        const location = res.headers.location;
        if (typeof location !== "string") return fail(`redirect ${res.status} without Location`);
        if (hop >= MAX_WELL_KNOWN_REDIRECTS) return fail("too many redirects");
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          return fail("invalid redirect Location");
        }
        if (next.protocol !== "https:") return fail("redirect to a non-https URL");
        if (next.username !== "" || next.password !== "") return fail("redirect URL with credentials");
        if (parseServerName(next.host) === null) return fail("redirect to an invalid host");
        if (visited.has(next.href)) return fail("redirect loop");
        visited.add(next.href);
        url = next;
        hostHeader = next.host;
        continue;
      }
      if (res.status !== 200) return fail(`status ${res.status}`);
      const server = parseWellKnownBody(res.body);
      if (server === null) return fail("invalid body or m.server");
      return { server, cacheMs: wellKnownCacheMs(res.headers["cache-control"]) };
    }
  } catch (e) {
    return fail(e instanceof FederationError ? `${e.kind}: ${e.message}` : "unexpected error");
  }
}
