import { MatrixError } from "../core/errors.js";
import { endpoint } from "../http/endpoint.js";
import { anyString, nullable, object, string } from "../http/schema.js";
import type { AssociationService } from "../services/associations.js";
import type { ValidationService } from "../services/validation.js";

/** Verifies an X-Matrix signed request and returns its origin server name. */
export type HomeserverRequestVerifier = (req: {
  method: string;
  uri: string;
  body: object | undefined;
  authorization: string[] | undefined;
}) => Promise<string>;

interface UnbindBody {
  mxid: string;
  threepid: { medium: string; address: string };
  sid?: string | null;
  client_secret?: string | null;
}

/** Reading a validated 3PID, binding it to a Matrix ID, and unbinding it. */
export function associationEndpoints(
  validation: ValidationService,
  associations: AssociationService,
  verifyHomeserver: HomeserverRequestVerifier,
) {
  return {
    /** # `GET /_matrix/identity/v2/3pid/getValidated3pid` */
    getValidated3pid: endpoint<{ Querystring: { sid?: string; client_secret?: string } }>({
      async handle(req) {
        const t = await validation.validatedThreepid(req.query.sid ?? "", req.query.client_secret ?? "");
        return { medium: t.medium, address: t.address, validated_at: t.validatedAt };
      },
    }),

    /** # `POST /_matrix/identity/v2/3pid/bind` */
    bind: endpoint<{ Body: { sid: string; client_secret: string; mxid: string } }>({
      schema: { body: object({ sid: string(255), client_secret: string(255), mxid: string(512) }) },
      async handle(req) {
        const b = req.body;
        return associations.bind(b.sid, b.client_secret, b.mxid, req.caller?.userId);
      },
    }),

    /** # `POST /_matrix/identity/v2/3pid/unbind`: proved by a validated session or the homeserver's signature. */
    unbind: endpoint<{ Body: UnbindBody }>({
      schema: {
        body: object(
          { mxid: string(512), threepid: object({ medium: string(32), address: string(512) }) },
          { sid: nullable(anyString(255)), client_secret: nullable(anyString(255)) },
        ),
      },
      async handle(req) {
        const { mxid, threepid, sid, client_secret: clientSecret } = req.body;
        if (sid !== undefined || clientSecret !== undefined) {
          await associations.unbind(mxid, threepid.medium, threepid.address, {
            kind: "session",
            sid: sid ?? "",
            clientSecret: clientSecret ?? "",
          });
          return {};
        }
        const authorization = req.raw.headersDistinct.authorization;
        if (authorization === undefined) {
          throw new MatrixError(
            "M_FORBIDDEN",
            "Unbind needs sid and client_secret, or a homeserver signature",
          );
        }
        // All Authorization headers (one per signing key) and the URI exactly as received.
        const origin = await verifyHomeserver({
          method: req.method,
          uri: req.raw.url ?? req.url,
          body: req.body,
          authorization,
        });
        await associations.unbind(mxid, threepid.medium, threepid.address, { kind: "homeserver", origin });
        return {};
      },
    }),
  };
}
