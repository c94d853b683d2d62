import { randomBytes } from "node:crypto";
import rateLimit from "@fastify/rate-limit";
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerOptions,
  LogController,
} from "fastify";
import type { Redis } from "ioredis";
import { MatrixError } from "../identity/errors.js";
import { matrixClientError } from "./client-errors.js";
import { CORS_HEADERS } from "./cors.js";
import { jsonDepthExceeds } from "./json-depth.js";
import { RouteTable } from "./routes.js";

export interface HttpOptions {
  /** Recognises errors that mean a dependency is down (answered 503, not 500). */
  isUnavailable?: (err: unknown) => boolean;
  /** Whether per-route rate limits apply (`rate_limit.enabled`). */
  rateLimit: boolean;
  /** Shares the per-route counters between instances (`rate_limit.redis_url`). */
  rateLimitRedis?: Redis | undefined;
  maxBodyBytes: number;
  trustProxy: boolean | string[];
  /** Slow-client limits (`http.request_timeout_seconds` etc.); none when absent (tests of the framework). */
  limits?: ConnectionLimits | undefined;
  logger: FastifyServerOptions["loggerInstance"];
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
 * The part of a URL that may be logged: the path only. Query strings carry secrets (access tokens,
 * client secrets, validation tokens in emailed links), under names that may even be percent-encoded.
 */
export function loggablePath(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}

function parseBody(raw: string, contentType: string | undefined): unknown {
  if (raw.trim() === "") return undefined;
  if (jsonDepthExceeds(raw)) throw new MatrixError(400, "M_BAD_JSON", "JSON nested too deeply");
  try {
    return JSON.parse(raw);
  } catch {
    if (contentType?.startsWith("application/x-www-form-urlencoded")) {
      return Object.fromEntries(new URLSearchParams(raw));
    }
    throw new MatrixError(400, "M_NOT_JSON", "Content not JSON");
  }
}

function frameworkErrorToMatrix(err: FastifyError): MatrixError | undefined {
  switch (err.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new MatrixError(413, "M_TOO_LARGE", "Request body too large");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new MatrixError(400, "M_NOT_JSON", "Content not JSON");
  }
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    return new MatrixError(err.statusCode, "M_UNKNOWN", "Bad request");
  }
  return undefined;
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

/** Errors the router raises before any route runs (malformed URL, over-long parameter), as Matrix errors. */
function routerError(error: FastifyError, _req: unknown, reply: FastifyReply): void {
  const matrix =
    error.code === "FST_ERR_MAX_PARAM_LENGTH"
      ? new MatrixError(414, "M_TOO_LARGE", "URL too long")
      : new MatrixError(400, "M_INVALID_PARAM", "Malformed URL");
  reply.headers(CORS_HEADERS).code(matrix.status).send({ errcode: matrix.errcode, error: matrix.message });
}

/**
 * Creates the fastify instance with Seraph's HTTP conventions: every body is parsed as JSON whatever its
 * content type, every error is a Matrix error object, CORS headers on every response, 404/405 M_UNRECOGNIZED.
 * Routes are added through the returned RouteTable.
 */
export async function createHttpServer(
  opts: HttpOptions,
): Promise<{ app: FastifyInstance; routes: RouteTable }> {
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: opts.maxBodyBytes,
    trustProxy: opts.trustProxy,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1000 },
    genReqId: () => randomBytes(6).toString("hex"),
    ...(opts.limits ? slowClientOptions(opts.limits) : {}),
    clientErrorHandler: matrixClientError,
    // One log line per request is written by the onResponse hook below, with secrets stripped.
    logController: new LogController({ disableRequestLogging: true }),
    // While closing, the listener is gone; requests already on open connections are still served.
    return503OnClosing: false,
    // Errors the router raises before any route runs (malformed URL, over-long parameter).
    frameworkErrors: routerError as FastifyServerOptions["frameworkErrors"],
  });
  if (opts.limits) app.server.maxConnections = opts.limits.maxConnections;
  const routes = new RouteTable(app, opts.rateLimit);
  if (opts.rateLimit) {
    await app.register(rateLimit, {
      global: false,
      keyGenerator: (req) => req.ip,
      ...(opts.rateLimitRedis
        ? { redis: opts.rateLimitRedis, nameSpace: "seraph:route:", skipOnError: true }
        : {}),
      errorResponseBuilder: (_req, ctx) =>
        new MatrixError(429, "M_LIMIT_EXCEEDED", "Too many requests", { retry_after_ms: ctx.ttl }),
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

  app.addHook("onRequest", async (req, reply) => {
    reply.headers(CORS_HEADERS);
    if (req.method === "OPTIONS") {
      reply.code(200).send({});
      return reply;
    }
  });

  app.addHook("onResponse", async (req, reply) => {
    req.log.info(
      {
        method: req.method,
        path: loggablePath(req.url),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      "request",
    );
  });

  app.setNotFoundHandler(async (req, reply) => {
    const path = req.url.split("?", 1)[0] ?? "";
    const known = routes.knowsPath(path);
    reply.code(known ? 405 : 404);
    return { errcode: "M_UNRECOGNIZED", error: known ? "Method not allowed" : "Unrecognized request" };
  });

  app.setErrorHandler(async (error: FastifyError | MatrixError | Error, req, reply) => {
    const matrix = error instanceof MatrixError ? error : frameworkErrorToMatrix(error as FastifyError);
    if (matrix) {
      if (matrix.status === 429) {
        const retry = (matrix.extra.retry_after_ms as number | undefined) ?? 1000;
        reply.header("retry-after", String(Math.ceil(retry / 1000)));
      }
      if (matrix.status >= 500) req.log.error({ err: matrix.cause ?? matrix, reqId: req.id }, matrix.message);
      reply.code(matrix.status);
      return { ...matrix.extra, errcode: matrix.errcode, error: matrix.message };
    }
    if (opts.isUnavailable?.(error)) {
      req.log.warn({ err: error, reqId: req.id }, "dependency unavailable");
      reply.code(503);
      return { errcode: "M_UNKNOWN", error: "Service temporarily unavailable, try again later" };
    }
    req.log.error({ err: error, reqId: req.id }, "unexpected error");
    reply.code(500);
    return { errcode: "M_UNKNOWN", error: `Internal server error (request ${req.id})` };
  });

  return { app, routes };
}
