import rateLimit, { type FastifyRateLimitStore } from "@fastify/rate-limit";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
  type preHandlerAsyncHookHandler,
} from "fastify";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { MatrixError } from "../core/errors.js";
import { matrixClientError } from "./client-errors.js";
import { CORS_HEADERS } from "./cors.js";
import type { Access, RateClass, Route } from "./endpoint.js";
import { errorHandler, routerError } from "./errors.js";
import { installFastPath } from "./fast-path.js";
import { jsonDepthExceeds } from "./json-depth.js";
import { jsonHoldsNul, NUL_REFUSED, urlHoldsNul } from "./nul.js";
import { lazyRequestLoggers, requestIdGenerator } from "./request-log.js";
import { AJV_OPTIONS, schemaError } from "./schema.js";

/** A @fastify/rate-limit store class whose counters live outside this process (the cluster primary). */
export type RouteLimitStore = new () => FastifyRateLimitStore;

/** Access policies whose check needs only the headers and the query string. */
const READS_NO_BODY: ReadonlySet<Access> = new Set(["token", "token-without-terms", "token-or-query-token"]);

/** Longest path parameter the router accepts (longer: 414 M_TOO_LARGE). */
const MAX_PARAM_LENGTH = 1000;
export interface HttpOptions {
  /** Recognises errors that mean the database is down (answered 503, not 500). */
  isDatabaseDown: (err: Error) => boolean;
  /** Per-route rate limits (`rate_limit.enabled`), shared between instances through `redis` when set. */
  rateLimit: {
    enabled: boolean;
    redis?: Redis | undefined;
    /** Counters shared with the other workers of one listener (given only when there is no `redis`). */
    store?: RouteLimitStore | undefined;
    perMinute: Record<RateClass, number | undefined>;
  };
  /** The check each access policy runs before the handler (`none` runs nothing). */
  guards: Record<Exclude<Access, "none">, preHandlerAsyncHookHandler | undefined>;
  maxBodyBytes: number;
  trustProxy: boolean | string[];
  /** The log level is read once: the per-request line is not even prepared when `info` is off. */
  logger: Logger;
  /** Slow-client limits (`http.request_timeout_seconds` etc.); none when absent (tests of the framework). */
  limits?: ConnectionLimits | undefined;
}

export interface ConnectionLimits {
  /** Whole request (headers and body) must arrive within this; then 408 and the connection is closed. */
  requestTimeoutMs: number;
  /** A socket with no traffic for this long is closed. */
  connectionTimeoutMs: number;
  /** Concurrent connections per process; further ones are closed at once. */
  maxConnections: number;
}

/**
 * Node checks request deadlines every `connectionsCheckingInterval` (30 s by default, so a trickling body
 * could stay twice the limit); check often enough that a connection is closed close to its deadline.
 */
function slowClientOptions(l: ConnectionLimits) {
  const requestTimeout = l.requestTimeoutMs;
  return {
    requestTimeout,
    connectionTimeout: l.connectionTimeoutMs,
    http: {
      requestTimeout,
      headersTimeout: Math.min(60_000, requestTimeout),
      connectionsCheckingInterval: Math.max(100, Math.min(5_000, Math.floor(requestTimeout / 10))),
    },
  };
}

/**
 * The part of a URL that may be logged: the path only. Query strings carry secrets (access tokens,
 * client secrets, validation tokens in emailed links), under names that may even be percent-encoded.
 */
export function loggablePath(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

function parseBody(raw: string, contentType: string | undefined): object | undefined {
  if (raw.trim() === "") return undefined;
  if (jsonDepthExceeds(raw)) throw new MatrixError("M_BAD_JSON", "JSON nested too deeply");
  let parsed: object;
  try {
    parsed = JSON.parse(raw);
  } catch {
    if (contentType?.startsWith("application/x-www-form-urlencoded")) {
      if (raw.includes("\u0000") || urlHoldsNul(raw)) throw nulRefused();
      return Object.fromEntries(new URLSearchParams(raw));
    }
    throw new MatrixError("M_NOT_JSON", "Content not JSON");
  }
  if (jsonHoldsNul(raw)) throw nulRefused();
  return parsed;
}

const nulRefused = () => new MatrixError(NUL_REFUSED.errcode, NUL_REFUSED.error);

/** Query strings as a flat string map: a repeated key keeps its first value. */
function parseQuery(q: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(q)) if (!(k in out)) out[k] = v;
  return out;
}

/** A matcher for "is there a route at this path under any method", built from the route table. */
function pathMatcher(routes: readonly Route[]): (path: string) => boolean {
  const patterns = routes.map((r) => {
    const escaped = r.path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:[A-Za-z_]+/g, "[^/]+");
    return new RegExp(`^${escaped}/?$`);
  });
  return (path) => patterns.some((p) => p.test(path));
}

/** A missing or `null` body reads as `{}`, so that absent keys are reported as missing parameters. */
async function emptyBodyAsObject(req: FastifyRequest): Promise<void> {
  if (req.body === undefined || req.body === null) req.body = {};
}

/**
 * Creates the fastify instance with Seraph's HTTP conventions and mounts the route table: every body is
 * parsed as JSON whatever its content type, schemas are compiled once per route, every error is a Matrix
 * error object, CORS headers on every response, 404/405 M_UNRECOGNIZED from the same table.
 */
export async function createHttpServer(
  opts: HttpOptions,
  routes: readonly Route[],
): Promise<FastifyInstance> {
  const genReqId = requestIdGenerator();
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    bodyLimit: opts.maxBodyBytes,
    trustProxy: opts.trustProxy,
    routerOptions: {
      ignoreTrailingSlash: true,
      maxParamLength: MAX_PARAM_LENGTH,
      querystringParser: parseQuery,
    },
    ajv: { customOptions: AJV_OPTIONS },
    schemaErrorFormatter: (errors, dataVar) => schemaError(errors, dataVar),
    genReqId,
    // `req.log`'s child logger (with the request id) is made only when a request writes a line.
    childLoggerFactory: lazyRequestLoggers,
    // One log line per request is written by the onResponse hook below, with secrets stripped.
    logController: new LogController({ disableRequestLogging: true }),
    // While closing, the listener is gone; requests already on open connections are still served.
    return503OnClosing: false,
    // Errors the router raises before any route runs (malformed URL, over-long parameter).
    frameworkErrors: routerError as FastifyServerOptions["frameworkErrors"],
    ...(opts.limits ? slowClientOptions(opts.limits) : {}),
    clientErrorHandler: matrixClientError,
  });
  if (opts.limits) app.server.maxConnections = opts.limits.maxConnections;
  const limits = opts.rateLimit;
  if (limits.enabled) {
    await app.register(rateLimit, {
      global: false,
      keyGenerator: (req) => req.ip,
      ...(limits.redis ? { redis: limits.redis, nameSpace: "seraph:route:", skipOnError: true } : {}),
      ...(limits.store ? { store: limits.store, skipOnError: true } : {}),
      errorResponseBuilder: (_req, ctx) =>
        new MatrixError("M_LIMIT_EXCEEDED", "Too many requests", { extra: { retry_after_ms: ctx.ttl } }),
    });
  }

  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (req, body, done) => {
    try {
      done(null, parseBody(body as string, req.headers["content-type"]));
    } catch (e) {
      done(e as Error, undefined);
    }
  });

  // Synchronous hooks: an async one costs a promise and a microtask turn on every request.
  app.addHook("onRequest", (req, reply, done) => {
    reply.headers(CORS_HEADERS);
    if (req.method === "OPTIONS") reply.code(200).send({});
    else if (urlHoldsNul(req.url)) reply.code(400).send(NUL_REFUSED);
    else done();
  });

  if (opts.logger.isLevelEnabled("info")) {
    app.addHook("onResponse", (req, reply, done) => {
      req.log.info(
        {
          method: req.method,
          path: loggablePath(req.url),
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime),
        },
        "request",
      );
      done();
    });
  }

  for (const r of routes) {
    const guard = r.access === "none" ? undefined : opts.guards[r.access];
    const perMinute = limits.perMinute[r.limit];
    const { schema, response, handle } = r.endpoint;
    app.route({
      method: r.method,
      url: r.path,
      handler: handle,
      ...(schema || response ? { schema: { ...schema, ...(response ? { response } : {}) } } : {}),
      // Who may call runs first: before the body is read when the token is in the headers or the query (an
      // unauthenticated caller cannot make us parse a body, and a request waiting for its token check holds
      // no parsed body), else before the schema (an unauthenticated caller learns nothing about the body).
      // (Wrapped: a value returned by an async preParsing hook would replace the body.)
      ...(guard && READS_NO_BODY.has(r.access)
        ? {
            preParsing: async (req: FastifyRequest, reply: FastifyReply) => {
              await guard.call(app, req, reply);
            },
          }
        : {}),
      preValidation: [
        ...(guard && !READS_NO_BODY.has(r.access) ? [guard] : []),
        ...(schema?.body ? [emptyBodyAsObject] : []),
      ],
      config: limits.enabled && perMinute ? { rateLimit: { max: perMinute, timeWindow: 60_000 } } : {},
    });
  }

  // Constant answers (versions, status, pubkey, isvalid) are written before fastify routes the request.
  installFastPath(app, routes, {
    logger: opts.logger,
    genReqId,
    rateLimited: (r) => limits.enabled && limits.perMinute[r.limit] !== undefined,
    maxParamLength: MAX_PARAM_LENGTH,
  });

  const knowsPath = pathMatcher(routes);
  app.setNotFoundHandler(async (req, reply) => {
    const known = knowsPath(loggablePath(req.url));
    reply.code(known ? 405 : 404);
    return { errcode: "M_UNRECOGNIZED", error: known ? "Method not allowed" : "Unrecognized request" };
  });
  app.setErrorHandler(errorHandler(opts.isDatabaseDown));
  return app;
}
