import { MatrixError, missingParams } from "../core/errors.js";
import { queryString } from "../http/params.js";
import type { ApiMount, RouteTable } from "../http/routes.js";
import type { KeyService } from "../services/keys.js";

/** `/pubkey/{keyId}`, `/pubkey/isvalid`, `/pubkey/ephemeral/isvalid` (no auth in v1 or v2). */
export function registerPubkeyRoutes(routes: RouteTable, mount: ApiMount, keys: KeyService): void {
  const VALID = { valid: true };
  const INVALID = { valid: false };

  routes.add("GET", `${mount.prefix}/pubkey/isvalid`, async (req) => {
    const publicKey = queryString(req.query, "public_key");
    if (!publicKey) throw missingParams("Missing parameter: public_key");
    return keys.isValidLongTerm(publicKey) ? VALID : INVALID;
  });

  routes.add("GET", `${mount.prefix}/pubkey/ephemeral/isvalid`, async (req) => {
    const publicKey = queryString(req.query, "public_key");
    if (!publicKey) throw missingParams("Missing parameter: public_key");
    return (await keys.isValidEphemeral(publicKey)) ? VALID : INVALID;
  });

  routes.add("GET", `${mount.prefix}/pubkey/:keyId`, async (req) => {
    const { keyId } = req.params as { keyId: string };
    const publicKey = keys.publicKey(keyId);
    if (publicKey === undefined) throw new MatrixError(404, "M_NOT_FOUND", "The public key was not found");
    return { public_key: publicKey };
  });
}
