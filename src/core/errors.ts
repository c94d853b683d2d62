/**
 * A failure a client caused or must be told about, in Matrix terms: `errcode`, a human message, the status
 * the answer carries, and extra fields (e.g. `mxid` for M_THREEPID_IN_USE). Services throw it; the HTTP
 * layer renders it.
 */
export class MatrixError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "MatrixError";
  }
}

export const badRequest = (errcode: string, message: string, extra?: Record<string, unknown>) =>
  new MatrixError(400, errcode, message, extra);
export const missingParams = (message: string) => new MatrixError(400, "M_MISSING_PARAMS", message);
export const unauthorized = (message = "Unauthorized") => new MatrixError(401, "M_UNAUTHORIZED", message);
export const notFound = (errcode: string, message: string) => new MatrixError(404, errcode, message);
