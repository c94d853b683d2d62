import { MatrixError } from "../core/errors.js";
import { type HomeserverClient, isFederationError } from "../federation/index.js";
import type { OpenIdVerifier } from "./accounts.js";

/** Verifies OpenID tokens through the homeserver client, turning federation failures into Matrix errors. */
export class HomeserverOpenIdVerifier implements OpenIdVerifier {
  constructor(private readonly client: Pick<HomeserverClient, "getOpenIdUserinfo">) {}

  async verifyOpenIdToken(serverName: string, accessToken: string): Promise<string> {
    try {
      return await this.client.getOpenIdUserinfo(serverName, accessToken);
    } catch (e) {
      if (!isFederationError(e)) throw e;
      switch (e.kind) {
        case "invalid_server_name":
          throw new MatrixError("M_INVALID_PARAM", "matrix_server_name is not a valid server name");
        // One answer, with no detail (no ENOTFOUND, no address): a caller must not learn whether a name
        // exists, or resolves to a private address.
        case "forbidden_address":
        case "unreachable":
        case "timeout":
          throw new MatrixError("M_UNAUTHORIZED", "Could not verify the OpenID token with that homeserver", {
            cause: e,
          });
        default:
          throw new MatrixError(
            "M_UNAUTHORIZED",
            `The homeserver did not confirm the OpenID token (${e.kind})`,
          );
      }
    }
  }
}
