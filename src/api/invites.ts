import type { FastifyRequest } from "fastify";
import type { Presentation } from "../delivery/brands.js";
import { bodyObject, optionalString, queryString, requireKeys, requireString } from "../http/params.js";
import type { ApiMount, RouteTable } from "../http/routes.js";
import { MatrixError } from "../identity/errors.js";
import type { InviteService } from "../identity/invites.js";

type PreHandler = (req: FastifyRequest) => Promise<void>;

/** `POST /store-invite` and `POST /sign-ed25519`. In v2 both need a caller (`auth`). */
export function registerInviteRoutes(
  routes: RouteTable,
  mount: ApiMount,
  invites: InviteService,
  publicBaseUrl: string,
  opts: {
    auth?: PreHandler | undefined;
    perMinute?: number | undefined;
    /** Chooses brand and language (`?brand=`, the optional `lang` field, Accept-Language). */
    presentation?: Presentation | undefined;
  } = {},
): void {
  const routeOpts = { preHandler: opts.auth, perMinute: opts.perMinute };
  const keyValidityUrl = `${publicBaseUrl}${mount.prefix}/pubkey/isvalid`;
  const ephemeralValidityUrl = `${publicBaseUrl}${mount.prefix}/pubkey/ephemeral/isvalid`;

  routes.add(
    "POST",
    `${mount.prefix}/store-invite`,
    async (req) => {
      const body = bodyObject(req.body);
      requireKeys(body, ["medium", "address", "room_id", "sender"]);
      const medium = requireString(body, "medium", 32);
      const address = requireString(body, "address", 1024);
      const roomId = requireString(body, "room_id", 1024);
      const sender = requireString(body, "sender", 1024);
      if (req.caller && req.caller.userId !== sender) {
        throw new MatrixError(403, "M_UNAUTHORIZED", "'sender' doesn't match the authenticated user");
      }
      const requested = queryString(req.query, "brand");
      const look = opts.presentation;
      const brand = look ? (look.isBrand(requested) ? requested : undefined) : requested;
      const lang = look?.chooseLanguage(
        optionalString(body, "lang", 64),
        req.headers["accept-language"],
        brand,
      );
      const stored = await invites.storeInvite({
        medium,
        address,
        roomId,
        sender,
        params: body,
        brand,
        lang,
        senderVerified: req.caller !== undefined,
      });
      return {
        token: stored.token,
        public_key: stored.longTermPublicKey,
        public_keys: [
          { public_key: stored.longTermPublicKey, key_validity_url: keyValidityUrl },
          { public_key: stored.ephemeralPublicKey, key_validity_url: ephemeralValidityUrl },
        ],
        display_name: stored.displayName,
      };
    },
    routeOpts,
  );

  routes.add(
    "POST",
    `${mount.prefix}/sign-ed25519`,
    async (req) => {
      const body = bodyObject(req.body);
      requireKeys(body, ["mxid", "token", "private_key"]);
      const mxid = requireString(body, "mxid", 1024);
      const token = requireString(body, "token", 1024);
      const privateKey = requireString(body, "private_key", 256);
      return invites.signInvite(mxid, token, privateKey);
    },
    routeOpts,
  );
}
