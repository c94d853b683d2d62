import { apiPrefix } from "../core/api-paths.js";
import { type JsonValue, MatrixError } from "../core/errors.js";
import type { Presentation } from "../delivery/brands.js";
import { endpoint } from "../http/endpoint.js";
import { anyString, nullable, object, string } from "../http/schema.js";
import type { InviteService } from "../services/invites.js";

interface StoreInviteBody {
  medium: string;
  address: string;
  room_id: string;
  sender: string;
  [param: string]: JsonValue;
}

/** Third-party invites: store one (and email the invitee), sign an invite proof with its ephemeral key. */
export function inviteEndpoints(invites: InviteService, publicBaseUrl: string, presentation: Presentation) {
  return {
    /** # `POST /_matrix/identity/v2/store-invite` (v1: no auth, sender unverified) */
    storeInvite: endpoint<{ Body: StoreInviteBody; Querystring: { brand?: string } }>({
      schema: {
        body: object(
          { medium: string(32), address: string(1024), room_id: string(1024), sender: string(1024) },
          // An optional extension: the invitee's language, when the inviter's client knows it.
          { lang: nullable(anyString(64)) },
        ),
      },
      async handle(req) {
        const body = req.body;
        if (req.caller && req.caller.userId !== body.sender) {
          throw new MatrixError("M_UNAUTHORIZED", "'sender' doesn't match the authenticated user", {
            status: 403,
          });
        }
        const requested = req.query.brand;
        const brand = presentation.isBrand(requested) ? requested : undefined;
        const lang = presentation.chooseLanguage(
          typeof body.lang === "string" ? body.lang : undefined,
          req.headers["accept-language"],
          brand,
        );
        const stored = await invites.storeInvite({
          medium: body.medium,
          address: body.address,
          roomId: body.room_id,
          sender: body.sender,
          params: body,
          brand,
          lang,
          senderVerified: req.caller !== undefined,
        });
        const prefix = `${publicBaseUrl}${apiPrefix(req.routeOptions.url)}`;
        return {
          token: stored.token,
          public_key: stored.longTermPublicKey,
          public_keys: [
            { public_key: stored.longTermPublicKey, key_validity_url: `${prefix}/pubkey/isvalid` },
            { public_key: stored.ephemeralPublicKey, key_validity_url: `${prefix}/pubkey/ephemeral/isvalid` },
          ],
          display_name: stored.displayName,
        };
      },
    }),

    /** # `POST /_matrix/identity/v2/sign-ed25519` */
    signEd25519: endpoint<{ Body: { mxid: string; token: string; private_key: string } }>({
      schema: { body: object({ mxid: string(1024), token: string(1024), private_key: string(256) }) },
      async handle(req) {
        return invites.signInvite(req.body.mxid, req.body.token, req.body.private_key);
      },
    }),
  };
}
