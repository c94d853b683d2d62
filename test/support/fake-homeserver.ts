/**
 * A fake Matrix homeserver for tests: really listens on a loopback address (random port), over HTTPS
 * (self-signed certificate generated with openssl, see ./tls.ts) or plain HTTP.
 *
 * Routes served by default:
 * - `GET /_matrix/federation/v1/openid/userinfo?access_token=…` → `{sub}` from the token map (`setUserinfo`),
 *   401 `M_UNKNOWN_TOKEN` otherwise; `setUserinfoBehaviour` switches to an oversized body, no answer at all, or a
 *   fixed response.
 * - `GET /.well-known/matrix/server` → 404 unless configured with `setWellKnown` (body, status, headers such as
 *   `cache-control`, or a redirect), optionally per `Host`.
 * - `GET /_matrix/key/v2/server` → the fake's ed25519 key, properly self-signed as `serverName`.
 * - `POST|PUT /_matrix/federation/v1/3pid/onbind` → records the JSON body; `onbind.failNext(n)` fails the next n.
 * - anything else → 404 `M_UNRECOGNIZED`; `route(method, path, handler)` adds or overrides a route.
 *
 * `createStubDns` (below) gives the client a DNS that maps test names (e.g. `hs.test`) to the fake's address.
 *
 * Every request is logged in `requests` (method, path, query, Host header, SNI, remote address, time, body) and
 * every accepted TCP connection in `connections`, so tests can assert what was (not) contacted.
 *
 * Example:
 * ```ts
 * const hs = await startFakeHomeserver({ serverName: "hs.test" });
 * hs.setUserinfo("tok", "@alice:hs.test");
 * // ... point the code under test at hs.port (stub DNS hs.test → 127.0.0.1) ...
 * expect(hs.requestsTo("/_matrix/federation/v1/openid/userinfo")).toHaveLength(1);
 * await hs.close();
 * ```
 */
import { randomBytes } from "node:crypto";
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import { type AddressInfo, isIP, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { signingKeyFromSeed, signJson } from "../../src/crypto/ed25519.js";
import type { DnsResolver, SrvRecord } from "../../src/federation/dns.js";
import { type CertificateNames, createSelfSignedCertificate } from "./tls.js";

export const USERINFO_PATH = "/_matrix/federation/v1/openid/userinfo";
export const WELL_KNOWN_PATH = "/.well-known/matrix/server";
export const KEY_PATH = "/_matrix/key/v2/server";
export const ONBIND_PATH = "/_matrix/federation/v1/3pid/onbind";

export interface FakeHomeserverOptions {
  /** Default "https". */
  protocol?: "https" | "http";
  /** Loopback address to listen on (default 127.0.0.1; any 127.x.y.z or ::1). */
  host?: string;
  /** Default 0 (random). */
  port?: number;
  /** The server name this fake claims (`server_name` of its key response). Default "hs.test". */
  serverName?: string;
  /** Names in the certificate. Default: the server name's host and the listen address. */
  certificate?: CertificateNames;
  /** Initial token → user ID map for userinfo. */
  userinfo?: Record<string, string>;
  /** Initial well-known route for any Host (default: none, i.e. 404). */
  wellKnown?: WellKnownRoute | null;
  /** 32-byte ed25519 seed for the signing key (default random). */
  signingKeySeed?: Buffer;
  /** Default "ed25519:fake". */
  keyId?: string;
}

export interface WellKnownRoute {
  /** JSON value to serialise, or a raw string body. Default `{"m.server": "<serverName>"}`. */
  body?: unknown;
  /** Default 200, or 302 with `redirect`. */
  status?: number;
  /** Extra response headers, e.g. `{"cache-control": "max-age=60"}`. */
  headers?: Record<string, string>;
  /** Redirect to this Location. */
  redirect?: string;
}

export type UserinfoBehaviour =
  /** Answer from the token map (default). */
  | { type: "tokens" }
  /** A JSON-ish body of `bytes` (default 1 MiB), with or without a Content-Length header (default without). */
  | { type: "oversized"; bytes?: number; declareLength?: boolean }
  /** Accept the request and never answer. */
  | { type: "hang" }
  /** Always answer with this status and JSON body. */
  | { type: "fixed"; status: number; body: unknown };

export interface RecordedRequest {
  time: number;
  method: string;
  /** Path without the query string. */
  path: string;
  /** Query string without `?` (may contain tokens: this is test-only). */
  query: string;
  /** The Host header as received. */
  host: string | undefined;
  /** SNI sent by the client (HTTPS only); null if none. */
  sni: string | null;
  remoteAddress: string | undefined;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RecordedConnection {
  time: number;
  remoteAddress: string | undefined;
}

export type RouteHandler = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;

export interface FakeHomeserver {
  readonly protocol: "https" | "http";
  readonly host: string;
  readonly port: number;
  /** Origin, e.g. `https://127.0.0.1:41234`. */
  readonly url: string;
  readonly serverName: string;
  /** PEM certificate (HTTPS only): pass it as a trusted CA to accept the fake with verification on. */
  readonly certificate: string | null;
  readonly signingKey: { keyId: string; publicKeyBase64: string; seed: Buffer };
  readonly requests: RecordedRequest[];
  readonly connections: RecordedConnection[];
  readonly onbind: {
    /** Every onbind body received (parsed JSON, or the raw string if not JSON), including failed ones. */
    readonly bodies: unknown[];
    /** Bodies that were answered with 200. */
    readonly delivered: unknown[];
    /** Answer the next `n` onbind calls with `status` (default 500). */
    failNext(n: number, status?: number): void;
  };
  requestsTo(path: string): RecordedRequest[];
  /** Maps a token to a user ID (null removes it). */
  setUserinfo(token: string, sub: string | null): void;
  setUserinfoBehaviour(behaviour: UserinfoBehaviour): void;
  /** Sets the well-known route for requests whose Host (without port) is `forHost`, or for any Host (`"*"`). */
  setWellKnown(route: WellKnownRoute | null, forHost?: string): void;
  /** Adds or overrides (null: removes) a route. */
  route(method: string, path: string, handler: RouteHandler | null): void;
  /** Clears the request and connection logs. */
  clearLogs(): void;
  close(): Promise<void>;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function hostOf(hostHeader: string | undefined): string {
  if (hostHeader === undefined) return "";
  if (hostHeader.startsWith("[")) return hostHeader.slice(0, hostHeader.indexOf("]") + 1);
  const colon = hostHeader.lastIndexOf(":");
  return colon === -1 ? hostHeader : hostHeader.slice(0, colon);
}

function isLoopback(host: string): boolean {
  return host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Starts a fake homeserver. Remember to `close()` it. */
export async function startFakeHomeserver(options: FakeHomeserverOptions = {}): Promise<FakeHomeserver> {
  const protocol = options.protocol ?? "https";
  const host = options.host ?? "127.0.0.1";
  if (!isLoopback(host)) throw new Error(`fake homeserver must listen on loopback, not ${host}`);
  const serverName = options.serverName ?? "hs.test";
  const keyId = options.keyId ?? "ed25519:fake";
  const key = signingKeyFromSeed(options.signingKeySeed ?? randomBytes(32), keyId);

  const requests: RecordedRequest[] = [];
  const connections: RecordedConnection[] = [];
  const tokens = new Map<string, string>(Object.entries(options.userinfo ?? {}));
  let userinfoBehaviour: UserinfoBehaviour = { type: "tokens" };
  const wellKnown = new Map<string, WellKnownRoute>();
  if (options.wellKnown) wellKnown.set("*", options.wellKnown);
  const routes = new Map<string, RouteHandler>();
  const onbindBodies: unknown[] = [];
  const onbindDelivered: unknown[] = [];
  let onbindFailures = 0;
  let onbindFailStatus = 500;

  const builtin = new Map<string, RouteHandler>();
  builtin.set(`GET ${USERINFO_PATH}`, (req, res) => {
    const b = userinfoBehaviour;
    if (b.type === "hang") return;
    if (b.type === "fixed") return sendJson(res, b.status, b.body);
    if (b.type === "oversized") {
      const size = b.bytes ?? 1024 * 1024;
      const head = `{"sub":"@alice:${serverName}","pad":"`;
      const padLength = Math.max(0, size - head.length - 2);
      res.writeHead(200, {
        "content-type": "application/json",
        ...(b.declareLength ? { "content-length": String(head.length + padLength + 2) } : {}),
      });
      res.write(head);
      const chunk = "x".repeat(16 * 1024);
      let left = padLength;
      const pump = (): void => {
        while (left > 0 && !res.destroyed) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!res.write(chunk.slice(0, n))) {
            res.once("drain", pump);
            return;
          }
        }
        if (!res.destroyed) res.end('"}');
      };
      pump();
      return;
    }
    const token = new URLSearchParams(req.query).get("access_token");
    const sub = token === null ? undefined : tokens.get(token);
    if (sub === undefined) return sendJson(res, 401, { errcode: "M_UNKNOWN_TOKEN", error: "Unknown token" });
    return sendJson(res, 200, { sub });
  });
  builtin.set(`GET ${WELL_KNOWN_PATH}`, (req, res) => {
    const route = wellKnown.get(hostOf(req.host)) ?? wellKnown.get("*");
    if (route === undefined) return sendJson(res, 404, { errcode: "M_NOT_FOUND", error: "No well-known" });
    if (route.redirect !== undefined) {
      res.writeHead(route.status ?? 302, { location: route.redirect, ...route.headers });
      res.end();
      return;
    }
    return sendJson(res, route.status ?? 200, route.body ?? { "m.server": serverName }, route.headers);
  });
  builtin.set(`GET ${KEY_PATH}`, (_req, res) => {
    const body = signJson(
      {
        server_name: serverName,
        valid_until_ts: Date.now() + 24 * 3600_000,
        verify_keys: { [keyId]: { key: key.publicKeyBase64 } },
        old_verify_keys: {},
      },
      serverName,
      key,
    );
    sendJson(res, 200, body);
  });
  const onbind: RouteHandler = (req, res) => {
    let parsed: unknown = req.body;
    try {
      parsed = JSON.parse(req.body);
    } catch {
      // keep the raw string
    }
    onbindBodies.push(parsed);
    if (onbindFailures > 0) {
      onbindFailures--;
      return sendJson(res, onbindFailStatus, { errcode: "M_UNKNOWN", error: "Told to fail" });
    }
    onbindDelivered.push(parsed);
    return sendJson(res, 200, {});
  };
  builtin.set(`POST ${ONBIND_PATH}`, onbind);
  builtin.set(`PUT ${ONBIND_PATH}`, onbind);

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= 1024 * 1024) chunks.push(c);
    });
    req.on("end", () => {
      const rawUrl = req.url ?? "/";
      const q = rawUrl.indexOf("?");
      const tlsSocket = req.socket as TLSSocket;
      const record: RecordedRequest = {
        time: Date.now(),
        method: req.method ?? "GET",
        path: q === -1 ? rawUrl : rawUrl.slice(0, q),
        query: q === -1 ? "" : rawUrl.slice(q + 1),
        host: req.headers.host,
        sni: protocol === "https" && typeof tlsSocket.servername === "string" ? tlsSocket.servername : null,
        remoteAddress: req.socket.remoteAddress,
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      requests.push(record);
      const key = `${record.method} ${record.path}`;
      const h = routes.get(key) ?? builtin.get(key);
      res.on("error", () => {});
      if (h === undefined) {
        sendJson(res, 404, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" });
        return;
      }
      Promise.resolve(h(record, res)).catch(() => {
        if (!res.headersSent) sendJson(res, 500, { errcode: "M_UNKNOWN", error: "Handler failed" });
      });
    });
  };

  let certificate: string | null = null;
  let server: http.Server | https.Server;
  if (protocol === "https") {
    const names = options.certificate ?? {
      dnsNames: [hostOf(serverName)].filter((n) => n !== "" && isIP(n.replace(/^\[|\]$/g, "")) === 0),
      ipAddresses: [host],
    };
    const tls = await createSelfSignedCertificate(names);
    certificate = tls.cert;
    server = https.createServer({ key: tls.key, cert: tls.cert }, handler);
  } else {
    server = http.createServer(handler);
  }
  server.on("connection", (socket: Socket) => {
    connections.push({ time: Date.now(), remoteAddress: socket.remoteAddress });
    socket.on("error", () => {});
  });
  server.on("tlsClientError", () => {});
  server.on("clientError", (_e, socket: Socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;

  return {
    protocol,
    host,
    port,
    url: `${protocol}://${urlHost}:${port}`,
    serverName,
    certificate,
    signingKey: { keyId, publicKeyBase64: key.publicKeyBase64, seed: key.seed },
    requests,
    connections,
    onbind: {
      bodies: onbindBodies,
      delivered: onbindDelivered,
      failNext(n: number, status = 500) {
        onbindFailures = n;
        onbindFailStatus = status;
      },
    },
    requestsTo: (path) => requests.filter((r) => r.path === path),
    setUserinfo(token, sub) {
      if (sub === null) tokens.delete(token);
      else tokens.set(token, sub);
    },
    setUserinfoBehaviour(behaviour) {
      userinfoBehaviour = behaviour;
    },
    setWellKnown(route, forHost = "*") {
      if (route === null) wellKnown.delete(forHost);
      else wellKnown.set(forHost, route);
    },
    route(method, path, h) {
      const k = `${method.toUpperCase()} ${path}`;
      if (h === null) routes.delete(k);
      else routes.set(k, h);
    },
    clearLogs() {
      requests.length = 0;
      connections.length = 0;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

export interface StubDns extends DnsResolver {
  /** Every host passed to `lookup`, in order. */
  readonly lookups: string[];
  /** Every name passed to `resolveSrv`, in order. */
  readonly srvQueries: string[];
  /** Sets (or with null removes) the addresses of a host. */
  setHost(host: string, addresses: string | string[] | null): void;
  /** Sets (or with null removes) the SRV records of a name such as `_matrix-fed._tcp.example.test`. */
  setSrv(name: string, records: SrvRecord[] | null): void;
}

function notFound(name: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`stub DNS: ${name} not found`);
  e.code = "ENOTFOUND";
  return e;
}

/**
 * An in-memory DNS for the homeserver client (`dns` option): hosts map to addresses, SRV names to records.
 * Anything else fails with ENOTFOUND, so no test ever reaches real DNS.
 */
export function createStubDns(
  config: { hosts?: Record<string, string | string[]>; srv?: Record<string, SrvRecord[]> } = {},
): StubDns {
  const hosts = new Map<string, string[]>();
  const srv = new Map<string, SrvRecord[]>(Object.entries(config.srv ?? {}));
  for (const [h, a] of Object.entries(config.hosts ?? {}))
    hosts.set(h.toLowerCase(), Array.isArray(a) ? a : [a]);
  const lookups: string[] = [];
  const srvQueries: string[] = [];
  return {
    lookups,
    srvQueries,
    async lookup(host) {
      lookups.push(host);
      const addresses = hosts.get(host.toLowerCase());
      if (addresses === undefined) throw notFound(host);
      return addresses.map((address) => ({ address, family: isIP(address) }));
    },
    async resolveSrv(name) {
      srvQueries.push(name);
      const records = srv.get(name);
      if (records === undefined) throw notFound(name);
      return records;
    },
    setHost(host, addresses) {
      if (addresses === null) hosts.delete(host.toLowerCase());
      else hosts.set(host.toLowerCase(), Array.isArray(addresses) ? addresses : [addresses]);
    },
    setSrv(name, records) {
      if (records === null) srv.delete(name);
      else srv.set(name, records);
    },
  };
}
