import { MatrixError } from "../core/errors.js";
import { endpoint } from "../http/endpoint.js";
import { object, string } from "../http/schema.js";
import type { KeyService } from "../services/keys.js";

const VALID = '{"valid":true}';
const INVALID = '{"valid":false}';
const publicKeyQuery = { querystring: object({ public_key: string() }) };

/** The server's long-term keys and the ephemeral keys of invites (no auth in v1 or v2). */
export function pubkeyEndpoints(keys: KeyService) {
  return {
    /** # `GET /_matrix/identity/v2/pubkey/:keyId` */
    publicKey: endpoint<{ Params: { keyId: string } }>({
      async handle(req, reply) {
        const body = keys.publicKeyJson(req.params.keyId);
        if (body === undefined) throw new MatrixError("M_NOT_FOUND", "The public key was not found");
        reply.type("application/json; charset=utf-8");
        return body;
      },
    }),

    /** # `GET /_matrix/identity/v2/pubkey/isvalid` */
    isValid: endpoint<{ Querystring: { public_key: string } }>({
      schema: publicKeyQuery,
      async handle(req, reply) {
        reply.type("application/json; charset=utf-8");
        return keys.isValidLongTerm(req.query.public_key) ? VALID : INVALID;
      },
    }),

    /** # `GET /_matrix/identity/v2/pubkey/ephemeral/isvalid` */
    isValidEphemeral: endpoint<{ Querystring: { public_key: string } }>({
      schema: publicKeyQuery,
      async handle(req, reply) {
        reply.type("application/json; charset=utf-8");
        return (await keys.isValidEphemeral(req.query.public_key)) ? VALID : INVALID;
      },
    }),
  };
}
