/** Errors raised by the homeserver client. Messages never contain access tokens or other secrets. */

export type FederationErrorKind =
  /** The server name (or a user ID / delegated name) is not valid: no network request was made. */
  | "invalid_server_name"
  /** The target resolves only to addresses refused by the IP guard. */
  | "forbidden_address"
  /** DNS failure, connection refused/reset, TLS handshake or certificate failure. */
  | "unreachable"
  /** Connect, headers or body did not complete in time. */
  | "timeout"
  /** The response body exceeded the size cap. */
  | "too_large"
  /** The response was not the expected JSON (bad JSON, wrong shape, wrong `sub`/`server_name`, bad signature). */
  | "bad_response"
  /** The homeserver answered with a non-2xx status (see `status`). */
  | "http_status";

export class FederationError extends Error {
  override readonly name = "FederationError";
  readonly kind: FederationErrorKind;
  /** HTTP status for kind `http_status`. */
  readonly status?: number;
  /** `errcode` from the homeserver's JSON error body, if any (kind `http_status`). */
  readonly errcode?: string;

  constructor(
    kind: FederationErrorKind,
    message: string,
    options: { status?: number; errcode?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    if (options.status !== undefined) this.status = options.status;
    if (options.errcode !== undefined) this.errcode = options.errcode;
  }
}

export function isFederationError(e: unknown): e is FederationError {
  return e instanceof FederationError;
}
