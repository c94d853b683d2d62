import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from "fastify";
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

/** A failure as it is answered: status, headers beyond CORS (`retry-after`) and the Matrix error body. */
export interface ErrorAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Readonly<Record<string, unknown>> & { errcode: string; error: string };
}

/** Where a failure's cause is logged (a request's logger, with its id bound). */
export type FailureLog = Pick<FastifyBaseLogger, "warn" | "error">;

/**
 * The one place where failures become answers: Matrix errors as they are, dependency failures as 502/503
 * without internal details (logged as a warning), anything else as 500 with the request id to find the
 * logged cause.
 *
 *   errorAnswer(new MatrixError("M_NOT_FOUND", "No such key"), () => false, log, "1a").status; // 404
 */
export function errorAnswer(
  error: Error,
  isDatabaseDown: (err: Error) => boolean,
  log: FailureLog,
  reqId: string,
): ErrorAnswer {
  const matrix = error instanceof MatrixError ? error : frameworkErrorToMatrix(error as FastifyError);
  if (matrix) {
    const retry = matrix.extra.retry_after_ms;
    return {
      status: matrix.status,
      headers:
        matrix.status === 429
          ? { "retry-after": String(Math.ceil((typeof retry === "number" ? retry : 1000) / 1000)) }
          : {},
      body: { ...matrix.extra, errcode: matrix.errcode, error: matrix.message },
    };
  }
  if (error instanceof UnavailableError || isDatabaseDown(error)) {
    const dependency = error instanceof UnavailableError ? error.dependency : "database";
    log.warn({ err: error.cause ?? error, reqId, dependency }, "dependency unavailable");
    const message =
      error instanceof UnavailableError ? error.message : "Service temporarily unavailable, try again later";
    return {
      status: UNAVAILABLE_STATUS[dependency],
      headers: {},
      body: { errcode: "M_UNKNOWN", error: message },
    };
  }
  log.error({ err: error, reqId }, "unexpected error");
  return {
    status: 500,
    headers: {},
    body: { errcode: "M_UNKNOWN", error: `Internal server error (request ${reqId})` },
  };
}

/** fastify's error handler: `errorAnswer` with the request's logger and id. */
export function errorHandler(isDatabaseDown: (err: Error) => boolean) {
  return async (error: Error, req: FastifyRequest, reply: FastifyReply) => {
    const answer = errorAnswer(error, isDatabaseDown, req.log, req.id);
    reply.headers(answer.headers).code(answer.status);
    return answer.body;
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
