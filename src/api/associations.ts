import { MatrixError } from "../core/errors.js";
import { bodyObject, queryString, requireKeys, requireString } from "../http/params.js";
import type { ApiMount, RouteOptions, RouteTable } from "../http/routes.js";
import type { AssociationService } from "../services/associations.js";
import type { ValidationService } from "../services/validation.js";

/** Verifies an X-Matrix signed request and returns its origin server name. */
export type HomeserverRequestVerifier = (req: {
  method: string;
  uri: string;
  body: unknown;
  authorization: string | string[] | undefined;
}) => Promise<string>;

export interface AssociationRouteOptions {
  auth: RouteOptions["preHandler"];
  authPerMinute?: number | undefined;
  /** Whether `3pid/bind` exists under this mount (v1 only with `v1.enable_bind`). */
  bind: boolean;
  verifyHomeserver: HomeserverRequestVerifier;
}

/** `3pid/getValidated3pid`, `3pid/bind`, `3pid/unbind`. */
export function registerAssociationRoutes(
  routes: RouteTable,
  mount: ApiMount,
  validation: ValidationService,
  associations: AssociationService,
  opts: AssociationRouteOptions,
): void {
  const authed = { preHandler: opts.auth, perMinute: opts.authPerMinute };

  routes.add(
    "GET",
    `${mount.prefix}/3pid/getValidated3pid`,
    async (req) => {
      const t = await validation.validatedThreepid(
        queryString(req.query, "sid"),
        queryString(req.query, "client_secret"),
      );
      return { medium: t.medium, address: t.address, validated_at: t.validatedAt };
    },
    authed,
  );

  if (opts.bind) {
    routes.add(
      "POST",
      `${mount.prefix}/3pid/bind`,
      async (req) => {
        const body = bodyObject(req.body);
        requireKeys(body, ["sid", "client_secret", "mxid"]);
        const mxid = requireString(body, "mxid", 512);
        return associations.bind(body.sid, body.client_secret, mxid, req.caller?.userId);
      },
      authed,
    );
  }

  // Authorised by the request itself (a validated session, or the homeserver's signature): no bearer token.
  routes.add(
    "POST",
    `${mount.prefix}/3pid/unbind`,
    async (req) => {
      const body = bodyObject(req.body);
      requireKeys(body, ["mxid", "threepid"]);
      const mxid = requireString(body, "mxid", 512);
      const threepid = body.threepid;
      if (typeof threepid !== "object" || threepid === null || Array.isArray(threepid)) {
        throw new MatrixError(400, "M_INVALID_PARAM", "threepid must be an object with medium and address");
      }
      const tp = threepid as Record<string, unknown>;
      requireKeys(tp, ["medium", "address"]);
      const medium = requireString(tp, "medium", 32);
      const address = requireString(tp, "address", 512);
      if (body.sid !== undefined || body.client_secret !== undefined) {
        await associations.unbind(mxid, medium, address, {
          kind: "session",
          sid: body.sid,
          clientSecret: body.client_secret,
        });
        return {};
      }
      const authorization = req.raw.headersDistinct.authorization;
      if (authorization === undefined) {
        throw new MatrixError(
          403,
          "M_FORBIDDEN",
          "Unbind needs sid and client_secret, or a homeserver signature",
        );
      }
      // All Authorization headers (one per signing key) and the URI exactly as received.
      const origin = await opts.verifyHomeserver({
        method: req.method,
        uri: req.raw.url ?? req.url,
        body: req.body,
        authorization,
      });
      await associations.unbind(mxid, medium, address, { kind: "homeserver", origin });
      return {};
    },
    // Every new origin costs a key fetch: limit unbinds per client like other authenticated calls.
    { perMinute: opts.authPerMinute },
  );
}
