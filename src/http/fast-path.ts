import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import proxyAddr from "@fastify/proxy-addr";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { CORS_HEADERS } from "./cors.js";
import type { EarlyHandler, PrecomputedAnswer, PrecomputedHandler, Route } from "./endpoint.js";
import { errorAnswer } from "./errors.js";

/** Builds the answer fastify would send for `json` returned as a string with type application/json. */
export function precomputedAnswer(json: string): PrecomputedAnswer {
  const body = Buffer.from(json, "utf8");
  return {
    body,
    headers: {
      ...CORS_HEADERS,
      "content-type": "application/json; charset=utf-8",
      "content-length": String(body.length),
    },
  };
}

/** The client address as fastify's `req.ip` reads it with this `trustProxy` setting. */
export function clientAddress(trustProxy: boolean | string[]): (req: IncomingMessage) => string {
  if (trustProxy === false) return (req) => req.socket.remoteAddress ?? "";
  const trust = trustProxy === true ? () => true : proxyAddr.compile(trustProxy);
  return (req) => {
    const all = proxyAddr.all(req, trust);
    return all[all.length - 1] ?? "";
  };
}

/** What a served fast answer tells the metrics: the route pattern, as fastify's `routeOptions.url`. */
export type FastAnswerObserver = (method: string, route: string, status: number, seconds: number) => void;

interface FastRoute {
  readonly pattern: string;
  readonly answer: PrecomputedHandler;
}

interface EarlyRoute {
  readonly pattern: string;
  readonly answer: EarlyHandler;
}

interface FastPath {
  observers: FastAnswerObserver[];
}

const installed = new WeakMap<FastifyInstance, FastPath>();

/** `decodeURIComponent`, or undefined where it fails (fastify's own decoding then answers the request). */
function decoded(text: string): string | undefined {
  if (!text.includes("%")) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/**
 * The values of a query string that is exactly `name=value` pairs for each of `names`, once each, in any
 * order (values percent-decoded, none empty), as fastify's parser reads them; undefined for anything else
 * (other or repeated keys, `+`, a fragment, a bad escape: the normal way answers those).
 *
 *   plainQueryValues("address=a%40b&medium=email", ["medium", "address"]); // { medium: "email", address: "a@b" }
 */
export function plainQueryValues<N extends string>(
  query: string,
  names: readonly N[],
): Record<N, string> | undefined {
  const parts = query.split("&");
  if (parts.length !== names.length) return undefined;
  const out: Partial<Record<N, string>> = {};
  for (const part of parts) {
    const eq = part.indexOf("=");
    const name = names.find((n) => n.length === eq && part.startsWith(n));
    if (name === undefined || out[name] !== undefined || eq === part.length - 1) return undefined;
    const value = part.slice(eq + 1);
    if (/[+#?]/.test(value)) return undefined;
    const text = decoded(value);
    if (text === undefined) return undefined;
    out[name] = text;
  }
  return out as Record<N, string>;
}

/** The value of a query string that is exactly `name=value` (see `plainQueryValues`). */
export function plainQueryValue(query: string, name: string): string | undefined {
  return plainQueryValues(query, [name])?.[name];
}

/**
 * Puts the precomputed answers of `routes` in front of fastify on its own server (`app.server`): a `GET`
 * whose path is exactly one of these routes' (no trailing slash; only a parameter may be percent-encoded)
 * and whose endpoint answers from memory is written at once, with the headers fastify would send, the same
 * log line and the same metrics; every other request (HEAD, OPTIONS, other methods, an answer the endpoint
 * declines) goes to fastify unchanged. Endpoints with an `early` handler (a store read) are answered the
 * same way once it settles, a failure as fastify's error handler answers it. Only routes open to anyone
 * without a rate limit take part. Hooks added to `app` later do not see these answers: add per-request
 * behaviour here too.
 */
export function installFastPath(
  app: FastifyInstance,
  routes: readonly Route[],
  opts: {
    logger: Logger;
    genReqId: () => string;
    rateLimited: (r: Route) => boolean;
    maxParamLength: number;
    trustProxy: boolean | string[];
    isDatabaseDown: (err: Error) => boolean;
  },
): void {
  const exact = new Map<string, FastRoute>();
  const early = new Map<string, EarlyRoute>();
  const byPrefix = new Map<string, FastRoute>();
  const statics = new Set<string>();
  for (const r of routes) if (!r.path.includes(":")) statics.add(`${r.method} ${r.path}`);
  for (const r of routes) {
    if (r.method !== "GET" || r.access !== "none" || opts.rateLimited(r)) continue;
    if (r.endpoint.early && !r.path.includes(":")) {
      early.set(r.path, { pattern: r.path, answer: r.endpoint.early });
      continue;
    }
    const answer = r.endpoint.precomputed;
    if (!answer) continue;
    const colon = r.path.indexOf(":");
    if (colon === -1) exact.set(r.path, { pattern: r.path, answer });
    else if (r.path.lastIndexOf("/") < colon)
      byPrefix.set(r.path.slice(0, colon), { pattern: r.path, answer });
  }
  if (exact.size === 0 && byPrefix.size === 0 && early.size === 0) return;

  const server = app.server;
  const listeners = server.listeners("request") as RequestListener[];
  const fastify = listeners[0];
  if (listeners.length !== 1 || !fastify) return;

  const state: FastPath = { observers: [] };
  installed.set(app, state);
  let closing = false;
  // fastify marks itself closing just before the preClose hooks: from then on answers close the connection.
  app.addHook("preClose", (done) => {
    closing = true;
    done();
  });
  const logLine = opts.logger.isLevelEnabled("info");
  const ipOf = clientAddress(opts.trustProxy);

  const served = (
    path: string,
    pattern: string,
    status: number,
    start: number,
    reqId: string | undefined,
  ) => {
    const ms = performance.now() - start;
    for (const observe of state.observers) observe("GET", pattern, status, ms / 1000);
    if (logLine) {
      opts.logger
        .child({ reqId: reqId ?? opts.genReqId() })
        .info({ method: "GET", path, status, ms: Math.round(ms) }, "request");
    }
  };

  /** Answers with `route`'s early handler once it settles; false when it declines. */
  const serveEarly = (
    req: IncomingMessage,
    res: ServerResponse,
    route: EarlyRoute,
    path: string,
    query: string,
  ) => {
    const pending = route.answer(query, () => ipOf(req));
    if (!pending) return false;
    const start = performance.now();
    pending
      .then(
        (answer) => {
          if (closing) res.setHeader("connection", "close");
          res.writeHead(200, answer.headers).end(answer.body);
          if (logLine || state.observers.length) served(path, route.pattern, 200, start, undefined);
        },
        (err: Error) => {
          const reqId = opts.genReqId();
          const failure = errorAnswer(err, opts.isDatabaseDown, opts.logger.child({ reqId }), reqId);
          const body = Buffer.from(JSON.stringify(failure.body), "utf8");
          if (closing) res.setHeader("connection", "close");
          res
            .writeHead(failure.status, {
              ...CORS_HEADERS,
              ...failure.headers,
              "content-type": "application/json; charset=utf-8",
              "content-length": String(body.length),
            })
            .end(body);
          if (logLine || state.observers.length) served(path, route.pattern, failure.status, start, reqId);
        },
      )
      // Only a bug in the lines above lands here: never leave the client waiting, never crash the process.
      .catch((err: Error) => {
        opts.logger.error({ err }, "fast answer failed");
        res.destroy();
      });
    return true;
  };

  const find = (path: string): { route: FastRoute; param: string } | undefined => {
    const hit = exact.get(path);
    if (hit) return { route: hit, param: "" };
    const slash = path.lastIndexOf("/");
    const prefix = path.slice(0, slash + 1);
    const route = byPrefix.get(prefix);
    const raw = path.slice(slash + 1);
    if (!route || raw === "" || raw.length > opts.maxParamLength) return undefined;
    const param = decoded(raw);
    // A static route at the same place wins in fastify's router.
    if (param === undefined || statics.has(`GET ${prefix}${param}`)) return undefined;
    return { route, param };
  };

  const serve = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== "GET") return false;
    const url = req.url ?? "";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    const earlyRoute = early.get(path);
    if (earlyRoute) return serveEarly(req, res, earlyRoute, path, q === -1 ? "" : url.slice(q + 1));
    const found = find(path);
    if (!found) return false;
    const start = logLine || state.observers.length ? performance.now() : 0;
    const answer = found.route.answer(found.param, q === -1 ? "" : url.slice(q + 1));
    if (!answer) return false;
    if (closing) res.setHeader("connection", "close");
    res.writeHead(200, answer.headers).end(answer.body);
    if (logLine || state.observers.length) served(path, found.route.pattern, 200, start, undefined);
    return true;
  };

  server.removeListener("request", fastify);
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (!serve(req, res)) fastify.call(server, req, res);
  });
}

/** Also counts the answers the fast path serves (metrics); does nothing if `app` has none. */
export function observeFastAnswers(app: FastifyInstance, observer: FastAnswerObserver): void {
  installed.get(app)?.observers.push(observer);
}
