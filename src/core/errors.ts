/** A JSON value, as carried in the extra fields of an error answer. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Every `errcode` Seraph answers with (the spec's, plus the common `M_*` codes). */
export type Errcode =
  | "M_UNKNOWN"
  | "M_UNRECOGNIZED"
  | "M_NOT_JSON"
  | "M_BAD_JSON"
  | "M_MISSING_PARAMS"
  | "M_INVALID_PARAM"
  | "M_TOO_LARGE"
  | "M_UNAUTHORIZED"
  | "M_FORBIDDEN"
  | "M_TERMS_NOT_SIGNED"
  | "M_NOT_FOUND"
  | "M_LIMIT_EXCEEDED"
  | "M_SESSION_NOT_VALIDATED"
  | "M_NO_VALID_SESSION"
  | "M_SESSION_EXPIRED"
  | "M_TOKEN_INCORRECT"
  | "M_INVALID_EMAIL"
  | "M_EMAIL_SEND_ERROR"
  | "M_INVALID_ADDRESS"
  | "M_SEND_ERROR"
  | "M_DESTINATION_REJECTED"
  | "M_THREEPID_IN_USE"
  | "M_INVALID_PEPPER";

/** The status each errcode carries unless the spec says otherwise for one endpoint. */
export const DEFAULT_STATUS: Readonly<Record<Errcode, number>> = {
  M_UNKNOWN: 400,
  M_UNRECOGNIZED: 404,
  M_NOT_JSON: 400,
  M_BAD_JSON: 400,
  M_MISSING_PARAMS: 400,
  M_INVALID_PARAM: 400,
  M_TOO_LARGE: 413,
  M_UNAUTHORIZED: 401,
  M_FORBIDDEN: 403,
  M_TERMS_NOT_SIGNED: 403,
  M_NOT_FOUND: 404,
  M_LIMIT_EXCEEDED: 429,
  M_SESSION_NOT_VALIDATED: 400,
  M_NO_VALID_SESSION: 404,
  M_SESSION_EXPIRED: 400,
  M_TOKEN_INCORRECT: 400,
  M_INVALID_EMAIL: 400,
  M_EMAIL_SEND_ERROR: 400,
  M_INVALID_ADDRESS: 400,
  M_SEND_ERROR: 400,
  M_DESTINATION_REJECTED: 400,
  M_THREEPID_IN_USE: 400,
  M_INVALID_PEPPER: 400,
};

export interface MatrixErrorOptions {
  /** Only where the spec gives this endpoint another status than the errcode's default. */
  status?: number;
  /** Extra fields of the answer, e.g. `mxid` for M_THREEPID_IN_USE or `retry_after_ms`. */
  extra?: Record<string, JsonValue>;
  cause?: unknown;
}

/**
 * A failure a client caused or must be told about, in Matrix terms. Services throw it; the HTTP layer
 * renders it as `{"errcode": ..., "error": ...}` with its status.
 *
 * @example throw new MatrixError("M_INVALID_PARAM", "mxid is not a valid Matrix user ID");
 */
export class MatrixError extends Error {
  readonly status: number;
  readonly extra: Readonly<Record<string, JsonValue>>;

  constructor(
    readonly errcode: Errcode,
    message: string,
    opts: MatrixErrorOptions = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = "MatrixError";
    this.status = opts.status ?? DEFAULT_STATUS[errcode];
    this.extra = opts.extra ?? {};
  }
}

/** What an infrastructure failure was about; mapped to a status in one place (`http/errors.ts`). */
export type Dependency = "database" | "homeserver" | "busy";

/**
 * A dependency failed (database down, homeserver unreachable, a contended row): not the client's fault.
 * Services throw it instead of picking a 5xx status; the message is safe to show, the cause is only logged.
 */
export class UnavailableError extends Error {
  constructor(
    readonly dependency: Dependency,
    message: string,
    opts: { cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = "UnavailableError";
  }
}
