import { MatrixError } from "../core/errors.js";
import type { PrecomputedAnswer } from "../http/endpoint.js";
import { endpoint } from "../http/endpoint.js";
import { plainQueryValue, precomputedAnswer } from "../http/fast-path.js";
import { object, string } from "../http/schema.js";
import type { KeyService } from "../services/keys.js";

const VALID = '{"valid":true}';
const INVALID = '{"valid":false}';
const VALID_ANSWER = precomputedAnswer(VALID);
const INVALID_ANSWER = precomputedAnswer(INVALID);
const PUBLIC_KEY_MAX = 65_536;
const publicKeyQuery = { querystring: object({ public_key: string(PUBLIC_KEY_MAX) }) };

/** `?public_key=…` when the query is exactly that and passes the schema; else undefined (fastify's way). */
function plainPublicKey(query: string): string | undefined {
  const key = plainQueryValue(query, "public_key");
  return key !== undefined && key.length <= PUBLIC_KEY_MAX ? key : undefined;
}

/** The server's long-term keys and the ephemeral keys of invites (no auth in v1 or v2). */
export function pubkeyEndpoints(keys: KeyService) {
  // Bytes per published answer; the key service says which answer a key id has now (revocations at once).
  const published = new Map<string, PrecomputedAnswer>();
  return {
    /** # `GET /_matrix/identity/v2/pubkey/:keyId` */
    publicKey: endpoint<{ Params: { keyId: string } }>({
      precomputed(keyId) {
        const json = keys.publicKeyJson(keyId);
        if (json === undefined) return undefined;
        let answer = published.get(json);
        if (answer === undefined) {
          answer = precomputedAnswer(json);
          published.set(json, answer);
        }
        return answer;
      },
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
      precomputed(_param, query) {
        const key = plainPublicKey(query);
        if (key === undefined) return undefined;
        return keys.isValidLongTerm(key) ? VALID_ANSWER : INVALID_ANSWER;
      },
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
