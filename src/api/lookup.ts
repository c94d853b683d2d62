import { bodyObject, queryString, requireKeys } from "../http/params.js";
import { type RouteOptions, type RouteTable, V1, V2 } from "../http/routes.js";
import type { AssociationService } from "../identity/associations.js";
import { missingParams } from "../identity/errors.js";
import type { LookupService } from "../identity/lookup.js";

/** v2 `hash_details` and `lookup` (auth + terms). */
export function registerV2LookupRoutes(
  routes: RouteTable,
  lookup: LookupService,
  opts: { auth: RouteOptions["preHandler"]; authPerMinute?: number | undefined },
): void {
  const authed = { preHandler: opts.auth, perMinute: opts.authPerMinute };
  routes.add("GET", `${V2.prefix}/hash_details`, async () => lookup.hashDetails(), authed);
  routes.add(
    "POST",
    `${V2.prefix}/lookup`,
    async (req) => {
      const body = bodyObject(req.body);
      requireKeys(body, ["addresses", "algorithm", "pepper"]);
      return { mappings: await lookup.lookup(body.addresses, body.algorithm, body.pepper) };
    },
    authed,
  );
}

/** Legacy v1 `GET lookup` (one signed association) and `POST bulk_lookup` (no auth). */
export function registerV1LookupRoutes(
  routes: RouteTable,
  lookup: LookupService,
  associations: AssociationService,
) {
  routes.add("GET", `${V1.prefix}/lookup`, async (req, reply) => {
    const medium = queryString(req.query, "medium");
    const address = queryString(req.query, "address");
    if (!medium || !address) throw missingParams("Missing parameters: medium, address");
    // JSON text, so that an association imported from sydent is answered byte for byte.
    reply.type("application/json; charset=utf-8");
    return (await associations.lookupSignedJson(medium, address)) ?? "{}";
  });
  routes.add("POST", `${V1.prefix}/bulk_lookup`, async (req) => {
    const body = bodyObject(req.body);
    requireKeys(body, ["threepids"]);
    return { threepids: await lookup.bulkLookup(body.threepids) };
  });
}
