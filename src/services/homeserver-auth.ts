import { MatrixError, UnavailableError } from "../core/errors.js";
import { isXMatrixError, type ServerKeyCache, verifyXMatrixRequest } from "../federation/index.js";

/**
 * Checks that a request was signed by a homeserver (X-Matrix, `destination_is` = our server name) and returns
 * the origin. Bad or missing signatures are 403 M_FORBIDDEN; an unreachable origin is a 5xx.
 */
export class HomeserverRequestAuth {
  constructor(
    private readonly serverName: string,
    private readonly keys: ServerKeyCache,
  ) {}

  async verify(req: {
    method: string;
    uri: string;
    body: object | undefined;
    authorization: string | string[] | undefined;
  }): Promise<string> {
    try {
      const { origin } = await verifyXMatrixRequest({
        method: req.method,
        uri: req.uri,
        body: req.body,
        headers: req.authorization,
        ownServerName: this.serverName,
        keys: this.keys,
      });
      return origin;
    } catch (e) {
      if (!isXMatrixError(e)) throw e;
      if (e.reason === "fetch_failed") {
        const kind = e.federationError?.kind;
        if (kind === "unreachable" || kind === "timeout") {
          throw new UnavailableError("homeserver", "Could not fetch the homeserver's signing keys", {
            cause: e,
          });
        }
      }
      throw new MatrixError("M_FORBIDDEN", `Homeserver signature not accepted (${e.reason})`);
    }
  }
}
