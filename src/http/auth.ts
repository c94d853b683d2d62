import type { FastifyRequest } from "fastify";
import type { Caller } from "../core/caller.js";
import { MatrixError } from "../core/errors.js";

/** Turns an access token into a caller; implemented by the account service. */
export interface Authenticator {
  /**
   * Resolves the token or throws a MatrixError (401 unknown, 403 terms). `batched`: its reads may wait for
   * the other reads of this turn of the event loop (false while the request's body waits, unread).
   */
  authenticate(token: string, opts: { skipTerms: boolean; batched?: boolean }): Promise<Caller>;
}

declare module "fastify" {
  interface FastifyRequest {
    caller?: Caller;
  }
}

/** Reads the access token from `Authorization: Bearer` or, when allowed, `?access_token=`. */
export function accessToken(req: FastifyRequest, allowQuery: boolean): string | undefined {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m ? m[1] : undefined;
  }
  return allowQuery ? (req.query as Record<string, string | undefined>).access_token : undefined;
}

/** Whether a request has a body on its way (a length above 0, or chunked). */
function carriesBody(req: FastifyRequest): boolean {
  const length = req.headers["content-length"];
  return (length !== undefined && length !== "0") || req.headers["transfer-encoding"] !== undefined;
}

/** A hook that requires a valid token (and, unless skipped, accepted terms). */
export function requireAuth(auth: Authenticator | undefined, allowQuery: boolean, skipTerms = false) {
  return async (req: FastifyRequest): Promise<void> => {
    const token = accessToken(req, allowQuery);
    if (token === undefined || auth === undefined) throw new MatrixError("M_UNAUTHORIZED", "Unauthorized");
    req.caller = await auth.authenticate(token, { skipTerms, batched: !carriesBody(req) });
  };
}
