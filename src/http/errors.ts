import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { MatrixError, UnavailableError } from "../core/errors.js";
import { CORS_HEADERS } from "./cors.js";

/** The status each kind of dependency failure is answered with. */
const UNAVAILABLE_STATUS = { database: 503, busy: 503, homeserver: 502 } as const;

function frameworkErrorToMatrix(err: FastifyError): MatrixError | undefined {
  switch (err.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new MatrixError("M_TOO_LARGE", "Request body too large");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new MatrixError("M_NOT_JSON", "Content not JSON");
  }
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    return new MatrixError("M_UNKNOWN", "Bad request", { status: err.statusCode });
  }
  return undefined;
}

/**
 * The one place where failures become answers: Matrix errors as they are, dependency failures as 502/503
 * without internal details, anything else as 500 with a request id to find the logged cause.
 */
export function errorHandler(isDatabaseDown: (err: Error) => boolean) {
  return async (error: Error, req: FastifyRequest, reply: FastifyReply) => {
    const matrix = error instanceof MatrixError ? error : frameworkErrorToMatrix(error as FastifyError);
    if (matrix) {
      if (matrix.status === 429) {
        const retry = matrix.extra.retry_after_ms;
        reply.header("retry-after", String(Math.ceil((typeof retry === "number" ? retry : 1000) / 1000)));
      }
      reply.code(matrix.status);
      return { ...matrix.extra, errcode: matrix.errcode, error: matrix.message };
    }
    if (error instanceof UnavailableError || isDatabaseDown(error)) {
      const dependency = error instanceof UnavailableError ? error.dependency : "database";
      req.log.warn({ err: error.cause ?? error, reqId: req.id, dependency }, "dependency unavailable");
      reply.code(UNAVAILABLE_STATUS[dependency]);
      const message =
        error instanceof UnavailableError
          ? error.message
          : "Service temporarily unavailable, try again later";
      return { errcode: "M_UNKNOWN", error: message };
    }
    req.log.error({ err: error, reqId: req.id }, "unexpected error");
    reply.code(500);
    return { errcode: "M_UNKNOWN", error: `Internal server error (request ${req.id})` };
  };
}

/** Errors the router raises before any route runs (malformed URL, over-long parameter), as Matrix errors. */
export function routerError(error: FastifyError, _req: unknown, reply: FastifyReply): void {
  const matrix =
    error.code === "FST_ERR_MAX_PARAM_LENGTH"
      ? new MatrixError("M_TOO_LARGE", "URL too long", { status: 414 })
      : new MatrixError("M_INVALID_PARAM", "Malformed URL");
  reply.headers(CORS_HEADERS).code(matrix.status).send({ errcode: matrix.errcode, error: matrix.message });
}
