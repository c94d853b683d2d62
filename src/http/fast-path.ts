import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { CORS_HEADERS } from "./cors.js";
import type { PrecomputedAnswer, PrecomputedHandler, Route } from "./endpoint.js";
import { urlHoldsNul } from "./nul.js";

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

/** What a served fast answer tells the metrics: the route pattern, as fastify's `routeOptions.url`. */
export type FastAnswerObserver = (method: string, route: string, status: number, seconds: number) => void;

interface FastRoute {
  readonly pattern: string;
  readonly answer: PrecomputedHandler;
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
 * The value of a query string that is exactly `name=value` (value percent-decoded), as fastify's parser
 * reads it; undefined for anything else (other keys, `+`, a fragment, a bad escape: the normal way).
 */
export function plainQueryValue(query: string, name: string): string | undefined {
  if (query.length <= name.length + 1 || !query.startsWith(name) || query[name.length] !== "=") {
    return undefined;
  }
  const value = query.slice(name.length + 1);
  if (/[&+#?]/.test(value)) return undefined;
  return decoded(value);
}

/**
 * Puts the precomputed answers of `routes` in front of fastify on its own server (`app.server`): a `GET`
 * whose path is exactly one of these routes' (no trailing slash; only a parameter may be percent-encoded)
 * and whose endpoint answers from memory is written at once, with the headers fastify would send, the same
 * log line and the same metrics; every other request (HEAD, OPTIONS, other methods, a NUL in the URL, an
 * answer the endpoint declines) goes to fastify unchanged. Only routes open to anyone without a rate limit
 * take part. Hooks added to `app` later do not see these answers: add per-request behaviour here too.
 */
export function installFastPath(
  app: FastifyInstance,
  routes: readonly Route[],
  opts: {
    logger: Logger;
    genReqId: () => string;
    rateLimited: (r: Route) => boolean;
    maxParamLength: number;
  },
): void {
  const exact = new Map<string, FastRoute>();
  const byPrefix = new Map<string, FastRoute>();
  const statics = new Set<string>();
  for (const r of routes) if (!r.path.includes(":")) statics.add(`${r.method} ${r.path}`);
  for (const r of routes) {
    const answer = r.endpoint.precomputed;
    if (!answer || r.method !== "GET" || r.access !== "none" || opts.rateLimited(r)) continue;
    const colon = r.path.indexOf(":");
    if (colon === -1) exact.set(r.path, { pattern: r.path, answer });
    else if (r.path.lastIndexOf("/") < colon)
      byPrefix.set(r.path.slice(0, colon), { pattern: r.path, answer });
  }
  if (exact.size === 0 && byPrefix.size === 0) return;

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
    const url = req.url ?? "";
    if (req.method !== "GET" || urlHoldsNul(url)) return false;
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    const found = find(path);
    if (!found) return false;
    const start = logLine || state.observers.length ? performance.now() : 0;
    const answer = found.route.answer(found.param, q === -1 ? "" : url.slice(q + 1));
    if (!answer) return false;
    if (closing) res.setHeader("connection", "close");
    res.writeHead(200, answer.headers).end(answer.body);
    if (logLine || state.observers.length) {
      const ms = performance.now() - start;
      for (const observe of state.observers) observe("GET", found.route.pattern, 200, ms / 1000);
      if (logLine) {
        opts.logger
          .child({ reqId: opts.genReqId() })
          .info({ method: "GET", path, status: 200, ms: Math.round(ms) }, "request");
      }
    }
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
