/**
 * The guarded HTTPS layer under the homeserver client: an undici 7 Agent whose connector refuses forbidden
 * addresses, plus a request helper with an overall deadline and a hard response-size cap.
 *
 * Address checks happen three times:
 * 1. IP literals in the URL are checked before any socket is opened (a custom `lookup` is bypassed for them);
 * 2. hostnames go through a custom `lookup` (the injected {@link DnsResolver}) that drops forbidden addresses;
 * 3. `socket.remoteAddress` is checked again when TCP connects (before the TLS ClientHello) and once more
 *    when the connector finishes.
 *
 * TLS names: the request URL carries the TCP target (`targetHost:targetPort`), and the `Host` header carries
 * the name the spec requires. undici derives the SNI/certificate name of each request from its `Host` header
 * (`getServerName(host)`; none for IP literals, as the spec wants) and never reuses a connection made for a
 * different servername, so `Host: hs.example:8448` gives SNI and certificate checks for `hs.example`.
 */
import type { LookupAddress as DnsLookupAddress, LookupOptions } from "node:dns";
import { isIP, type Socket } from "node:net";
import { rootCertificates } from "node:tls";
import type * as Undici from "undici";
import type { Agent, buildConnector } from "undici";
import { lazyModule } from "../core/lazy-module.js";
import type { DnsResolver } from "./dns.js";
import { FederationError, type FederationErrorKind } from "./errors.js";
import type { IpGuard } from "./ip-guard.js";

/** Error code of connection attempts refused by the IP guard. */
export const BLOCKED_CODE = "EBLOCKED";

export class BlockedAddressError extends Error {
  readonly code = BLOCKED_CODE;
  constructor(address: string) {
    super(`refusing to connect to forbidden address ${address}`);
    this.name = "BlockedAddressError";
  }
}

export interface GuardedHttpOptions {
  guard: IpGuard;
  dns: DnsResolver;
  verifyCertificates: boolean;
  /** Extra trusted CA certificates (PEM), in addition to Node's root store. */
  caCertificates?: readonly string[];
  connectTimeoutMs: number;
  /** Headers and body; the whole request (connect included) must finish within connect + request timeout. */
  requestTimeoutMs: number;
  userAgent: string;
  /** Agent-level hard cap on any response body (per-request caps are usually lower). */
  maxResponseBytes?: number;
}

export interface GuardedRequest {
  /** `https://<targetHost>:<targetPort><path>` */
  url: URL;
  /** The `Host` header (also determines SNI and the certificate name). */
  hostHeader: string;
  method?: "GET" | "POST" | "PUT";
  /** Serialised as JSON with `Content-Type: application/json`. */
  jsonBody?: unknown;
  /** Response body cap in bytes: beyond it the response is aborted with kind `too_large`. */
  maxBytes: number;
  /** Overrides the request timeout (the overall deadline for this request). */
  timeoutMs?: number;
}

export interface GuardedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | DnsLookupAddress[],
  family?: number,
) => void;

function lookupError(code: string, host: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(
    `${code === "ENOTFOUND" ? "no addresses for" : "lookup failed for"} ${host}`,
  );
  e.code = code;
  return e;
}

/** A `net.connect` lookup function that resolves through `dns` and drops addresses refused by `guard`. */
export function guardedLookup(dns: DnsResolver, guard: IpGuard) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    const family =
      options.family === 4 || options.family === "IPv4"
        ? 4
        : options.family === 6 || options.family === "IPv6"
          ? 6
          : 0;
    dns.lookup(hostname).then(
      (addresses) => {
        const usable = addresses.filter((a) => family === 0 || a.family === family);
        const allowed = usable.filter((a) => guard.isAllowed(a.address));
        process.nextTick(() => {
          const first = allowed[0];
          if (first === undefined) {
            if (usable.length === 0) callback(lookupError("ENOTFOUND", hostname), "");
            else callback(new BlockedAddressError(usable[0]!.address), "");
          } else if (options.all) {
            callback(
              null,
              allowed.map((a) => ({ address: a.address, family: a.family })),
            );
          } else {
            callback(null, first.address, first.family);
          }
        });
      },
      (err: NodeJS.ErrnoException) => {
        process.nextTick(() => callback(err?.code ? err : lookupError("ENOTFOUND", hostname), ""));
      },
    );
  };
}

/**
 * Wraps an undici connector so that forbidden targets are refused: IP literals before connecting, and the
 * connected peer address (at TCP connect, and again when the connector reports success).
 */
export function guardConnector(base: buildConnector.connector, guard: IpGuard): buildConnector.connector {
  return (opts, callback) => {
    const host = opts.hostname.startsWith("[") ? opts.hostname.slice(1, -1) : opts.hostname;
    if (isIP(host) !== 0 && !guard.isAllowed(host)) {
      callback(new BlockedAddressError(host), null);
      return;
    }
    let done = false;
    const finish: buildConnector.Callback = (...args) => {
      if (done) return;
      done = true;
      callback(...args);
    };
    // undici's connector returns the socket it created (its typings say void).
    const socket = (base as unknown as (o: typeof opts, cb: buildConnector.Callback) => Socket | undefined)(
      opts,
      (err, sock) => {
        if (err !== null) {
          finish(err, null);
          return;
        }
        const remote = sock.remoteAddress;
        if (remote === undefined || !guard.isAllowed(remote)) {
          sock.destroy();
          finish(new BlockedAddressError(remote ?? "(unknown)"), null);
          return;
        }
        finish(null, sock);
      },
    );
    // Runs before tls.connect's own 'connect' listener, i.e. before the ClientHello is sent.
    socket?.prependOnceListener?.("connect", function (this: Socket) {
      const remote = this.remoteAddress;
      if (remote === undefined || !guard.isAllowed(remote))
        this.destroy(new BlockedAddressError(remote ?? "(unknown)"));
    });
  };
}

const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|ERR_OSSL_)/;

function errorCodes(e: unknown, depth = 0): string[] {
  if (e === null || typeof e !== "object" || depth > 4) return [];
  const out: string[] = [];
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string") out.push(code);
  if (e instanceof AggregateError) for (const inner of e.errors) out.push(...errorCodes(inner, depth + 1));
  out.push(...errorCodes((e as { cause?: unknown }).cause, depth + 1));
  return out;
}

/** Maps a transport error to a FederationError (already-mapped errors pass through). */
export function toFederationError(e: unknown, what: string, timedOut: boolean): FederationError {
  if (e instanceof FederationError) return e;
  const codes = errorCodes(e);
  let kind: FederationErrorKind = "unreachable";
  let message: string;
  if (codes.includes(BLOCKED_CODE)) {
    kind = "forbidden_address";
    message = `${what}: the target address is not allowed`;
  } else if (
    timedOut ||
    codes.some((c) =>
      ["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "ETIMEDOUT"].includes(c),
    )
  ) {
    kind = "timeout";
    message = `${what}: timed out`;
  } else if (codes.includes("UND_ERR_RES_EXCEEDED_MAX_SIZE")) {
    kind = "too_large";
    message = `${what}: response too large`;
  } else {
    const tls = codes.find((c) => TLS_CODE.test(c));
    message = tls
      ? `${what}: TLS failure (${tls})`
      : `${what}: connection failed (${codes[0] ?? "unknown error"})`;
  }
  return new FederationError(kind, message, { cause: e });
}

/** undici (a large module), loaded with the first outbound request: an idle server does not need it. */
const undici = lazyModule<typeof Undici>("undici");

export class GuardedHttp {
  #agent: Agent | undefined;
  readonly #options: GuardedHttpOptions;
  readonly #connectTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #userAgent: string;

  constructor(options: GuardedHttpOptions) {
    this.#options = options;
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#requestTimeoutMs = options.requestTimeoutMs;
    this.#userAgent = options.userAgent;
  }

  /** The guarded agent, made for the first request. */
  get agent(): Agent {
    if (this.#agent) return this.#agent;
    const options = this.#options;
    const { Agent, buildConnector } = undici();
    const base = buildConnector({
      timeout: options.connectTimeoutMs,
      rejectUnauthorized: options.verifyCertificates,
      ...(options.caCertificates?.length ? { ca: [...rootCertificates, ...options.caCertificates] } : {}),
      lookup: guardedLookup(options.dns, options.guard),
    });
    this.#agent = new Agent({
      connect: guardConnector(base, options.guard),
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
      maxResponseSize: options.maxResponseBytes ?? 1024 * 1024,
      keepAliveTimeout: 10_000,
      keepAliveMaxTimeout: 60_000,
    });
    return this.#agent;
  }

  /**
   * Performs one request (no redirects followed). Resolves for any HTTP status; rejects with a
   * FederationError for transport failures, timeouts and oversized bodies.
   * `what` names the request in error messages; it must not contain secrets.
   */
  async request(req: GuardedRequest, what: string): Promise<GuardedResponse> {
    const controller = new AbortController();
    let timedOut = false;
    const deadline = req.timeoutMs ?? this.#connectTimeoutMs + this.#requestTimeoutMs;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, deadline);
    const headers: Record<string, string> = {
      host: req.hostHeader,
      "user-agent": this.#userAgent,
      accept: "application/json",
    };
    let body: string | undefined;
    if (req.jsonBody !== undefined) {
      body = JSON.stringify(req.jsonBody);
      headers["content-type"] = "application/json";
    }
    try {
      const res = await undici().request(req.url, {
        dispatcher: this.agent,
        method: req.method ?? "GET",
        headers,
        body,
        signal: controller.signal,
      });
      const declared = Number(res.headers["content-length"]);
      if (Number.isFinite(declared) && declared > req.maxBytes) {
        res.body.destroy();
        throw new FederationError("too_large", `${what}: response too large (${declared} bytes declared)`);
      }
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        total += buf.length;
        if (total > req.maxBytes) {
          res.body.destroy();
          throw new FederationError("too_large", `${what}: response larger than ${req.maxBytes} bytes`);
        }
        chunks.push(buf);
      }
      return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) };
    } catch (e) {
      throw toFederationError(e, what, timedOut);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.#agent?.destroy();
  }
}
