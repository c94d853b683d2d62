/**
 * HomeserverClient: the only way Seraph talks to homeservers.
 *
 * Every call validates the server name first (no network for invalid names), resolves it per the S2S spec
 * ({@link ServerNameResolver}), and goes through the guarded agent ({@link GuardedHttp}): forbidden addresses
 * are refused, bodies are capped at 64 KiB, and every request has a deadline. Access tokens never appear in
 * error messages or logs.
 */
import { isIP } from "node:net";
import { type Logger, NO_LOG } from "../core/logger.js";
import { decodeBase64 } from "../crypto/base64.js";
import { publicKeyObject, verifyJsonSignature } from "../crypto/ed25519.js";
import { createSystemDnsResolver, type DnsResolver } from "./dns.js";
import { FederationError } from "./errors.js";
import { GuardedHttp, type GuardedResponse } from "./http.js";
import { IpGuard } from "./ip-guard.js";
import { type ResolvedServer, ServerNameResolver } from "./resolver.js";
import { formatHost, parseServerName, serverPartOfUserId } from "./server-name.js";
import { fetchWellKnown } from "./well-known.js";

/** Cap for every homeserver response body we read. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

export interface HomeserverClientOptions {
  /** CIDRs allowed even if in the default/configured deny lists (e.g. `["127.0.0.1/32"]` in tests). */
  ipAllowlist?: readonly string[];
  /** Extra CIDRs to refuse. */
  ipDenylist?: readonly string[];
  /** Verify homeserver TLS certificates (default true). */
  verifyCertificates?: boolean;
  /** Extra trusted CA certificates (PEM), on top of Node's root store. */
  caCertificates?: readonly string[];
  /** TCP + TLS connect timeout (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Headers + body timeout (default 10000 ms); each request must also finish within connect + request timeout. */
  requestTimeoutMs?: number;
  /** DNS used for SRV and A/AAAA lookups (default: node:dns). Tests inject a stub. */
  dns?: DnsResolver;
  logger?: Logger;
  /** `User-Agent` header (default `Seraph`). */
  userAgent?: string;
  /**
   * TEST ONLY: the port used for `https://<hostname>/.well-known/matrix/server` instead of 443, so tests can
   * serve the well-known document from a loopback server on a random port. Never set this in production.
   */
  wellKnownPort?: number;
  /** Clock for the resolution caches (default Date.now). */
  now?: () => number;
}

export interface ServerKeys {
  /** Key id (e.g. `ed25519:abc`) → unpadded base64 public key, from `verify_keys`. */
  verifyKeys: Record<string, string>;
  validUntilTs: number;
}

function parseJsonObject(body: Buffer): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(body.toString("utf8"));
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function httpStatusError(what: string, res: GuardedResponse): FederationError {
  const errcode = parseJsonObject(res.body)?.errcode;
  return new FederationError("http_status", `${what}: homeserver answered ${res.status}`, {
    status: res.status,
    ...(typeof errcode === "string" && errcode.length <= 128 ? { errcode } : {}),
  });
}

export class HomeserverClient {
  readonly #http: GuardedHttp;
  readonly #guard: IpGuard;
  readonly #resolver: ServerNameResolver;
  readonly #logger: Logger;

  constructor(options: HomeserverClientOptions = {}) {
    this.#logger = options.logger ?? NO_LOG;
    this.#guard = new IpGuard({ allowlist: options.ipAllowlist ?? [], denylist: options.ipDenylist ?? [] });
    const dns = options.dns ?? createSystemDnsResolver();
    this.#http = new GuardedHttp({
      guard: this.#guard,
      dns,
      verifyCertificates: options.verifyCertificates ?? true,
      ...(options.caCertificates ? { caCertificates: options.caCertificates } : {}),
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      userAgent: options.userAgent ?? "Seraph",
    });
    const wellKnownPort = options.wellKnownPort;
    this.#resolver = new ServerNameResolver({
      dns,
      wellKnown: (hostname) =>
        fetchWellKnown(this.#http, hostname, wellKnownPort === undefined ? {} : { port: wellKnownPort }),
      ...(options.now ? { now: options.now } : {}),
      logger: this.#logger,
    });
  }

  /** Resolves a server name per the S2S spec (cached). Exposed for diagnostics and tests. */
  resolveServerName(serverName: string): Promise<ResolvedServer> {
    return this.#resolver.resolve(serverName);
  }

  /**
   * Validates an OpenID token with `serverName` and returns the user ID it belongs to.
   * The user ID's server part must equal `serverName` exactly.
   */
  async getOpenIdUserinfo(serverName: string, accessToken: string): Promise<string> {
    const what = `openid userinfo from ${serverName}`;
    const res = await this.#call(serverName, {
      method: "GET",
      path: "/_matrix/federation/v1/openid/userinfo",
      query: `access_token=${encodeURIComponent(accessToken)}`,
      what,
    });
    if (res.status !== 200) throw httpStatusError(what, res);
    const sub = parseJsonObject(res.body)?.sub;
    if (typeof sub !== "string") throw new FederationError("bad_response", `${what}: no valid sub`);
    const server = serverPartOfUserId(sub);
    if (server === null) throw new FederationError("bad_response", `${what}: sub is not a valid user ID`);
    if (server !== serverName) {
      throw new FederationError("bad_response", `${what}: sub belongs to another server`);
    }
    return sub;
  }

  /**
   * Fetches `/_matrix/key/v2/server` and checks `server_name` and the self-signatures: at least one signature
   * of `serverName` by a key in `verify_keys` must exist, and every such signature must verify.
   */
  async getServerKeys(serverName: string): Promise<ServerKeys> {
    const what = `server keys of ${serverName}`;
    const res = await this.#call(serverName, { method: "GET", path: "/_matrix/key/v2/server", what });
    if (res.status !== 200) throw httpStatusError(what, res);
    const bad = (why: string) => new FederationError("bad_response", `${what}: ${why}`);
    const json = parseJsonObject(res.body);
    if (json === null) throw bad("not a JSON object");
    if (json.server_name !== serverName) throw bad("server_name does not match");
    const validUntilTs = json.valid_until_ts;
    if (typeof validUntilTs !== "number" || !Number.isSafeInteger(validUntilTs))
      throw bad("invalid valid_until_ts");
    const rawKeys = json.verify_keys;
    if (typeof rawKeys !== "object" || rawKeys === null || Array.isArray(rawKeys))
      throw bad("invalid verify_keys");
    const verifyKeys: Record<string, string> = {};
    let checked = 0;
    const sigs = (json.signatures as Record<string, unknown> | undefined)?.[serverName];
    for (const [keyId, value] of Object.entries(rawKeys as Record<string, unknown>)) {
      const key = (value as { key?: unknown } | null)?.key;
      if (typeof key !== "string") throw bad(`invalid verify key ${keyId}`);
      verifyKeys[keyId] = key;
      if (!keyId.startsWith("ed25519:")) continue;
      const raw = decodeBase64(key);
      if (raw === null || raw.length !== 32) throw bad(`invalid ed25519 key ${keyId}`);
      if (typeof sigs !== "object" || sigs === null || !(keyId in sigs)) continue;
      let ok = false;
      try {
        ok = verifyJsonSignature(json, serverName, keyId, publicKeyObject(raw));
      } catch {
        ok = false;
      }
      if (!ok) throw bad(`signature by ${keyId} does not verify`);
      checked++;
    }
    if (checked === 0) throw bad("not signed by any of its verify_keys");
    return { verifyKeys, validUntilTs };
  }

  /** POSTs `/_matrix/federation/v1/3pid/onbind`. Resolves on 2xx; otherwise throws (kind `http_status` etc.). */
  async postOnbind(serverName: string, body: object): Promise<void> {
    const what = `onbind to ${serverName}`;
    const res = await this.#call(serverName, {
      method: "POST",
      path: "/_matrix/federation/v1/3pid/onbind",
      body,
      what,
    });
    if (res.status < 200 || res.status > 299) throw httpStatusError(what, res);
  }

  /** Destroys the agent and its connections. */
  async close(): Promise<void> {
    await this.#http.close();
  }

  async #call(
    serverName: string,
    req: { method: "GET" | "POST"; path: string; query?: string; body?: object; what: string },
  ): Promise<GuardedResponse> {
    const started = Date.now();
    const logCtx = { serverName, method: req.method, path: req.path };
    try {
      if (typeof serverName !== "string" || parseServerName(serverName) === null) {
        throw new FederationError("invalid_server_name", `${req.what}: invalid server name`);
      }
      const target = await this.#resolver.resolve(serverName);
      if (isIP(target.targetHost) !== 0 && !this.#guard.isAllowed(target.targetHost)) {
        throw new FederationError("forbidden_address", `${req.what}: the target address is not allowed`);
      }
      const url = new URL(`https://${formatHost(target.targetHost, target.targetPort)}${req.path}`);
      if (req.query !== undefined) url.search = req.query;
      const res = await this.#http.request(
        {
          url,
          hostHeader: target.hostHeader,
          method: req.method,
          maxBytes: MAX_RESPONSE_BYTES,
          ...(req.body !== undefined ? { jsonBody: req.body } : {}),
        },
        req.what,
      );
      this.#logger.debug(
        {
          ...logCtx,
          target: formatHost(target.targetHost, target.targetPort),
          via: target.via,
          status: res.status,
          ms: Date.now() - started,
        },
        "homeserver request",
      );
      return res;
    } catch (e) {
      const err =
        e instanceof FederationError
          ? e
          : new FederationError("unreachable", `${req.what}: unexpected failure`);
      const log = err.kind === "invalid_server_name" ? this.#logger.debug : this.#logger.warn;
      log.call(this.#logger, { ...logCtx, kind: err.kind, ms: Date.now() - started }, err.message);
      throw err;
    }
  }
}
