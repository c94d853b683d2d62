import { bodyObject, queryString, requireKeys } from "../http/params.js";
import { type RouteOptions, type RouteTable, V1, V2 } from "../http/routes.js";
import { missingParams } from "../identity/errors.js";
import type { BudgetedLookup } from "../identity/lookup-budget.js";

/** v2 `hash_details` and `lookup` (auth + terms). */
export function registerV2LookupRoutes(
  routes: RouteTable,
  lookup: BudgetedLookup,
  opts: {
    auth: RouteOptions["preHandler"];
    /** hash_details may accept `?access_token=` when other routes do not (`auth.allow_query_token`). */
    hashDetailsAuth?: RouteOptions["preHandler"];
    authPerMinute?: number | undefined;
  },
): void {
  const authed = { preHandler: opts.auth, perMinute: opts.authPerMinute };
  routes.add("GET", `${V2.prefix}/hash_details`, async () => lookup.hashDetails(), {
    preHandler: opts.hashDetailsAuth ?? opts.auth,
    perMinute: opts.authPerMinute,
  });
  routes.add(
    "POST",
    `${V2.prefix}/lookup`,
    async (req) => {
      const body = bodyObject(req.body);
      requireKeys(body, ["addresses", "algorithm", "pepper"]);
      const caller = { userId: req.caller?.userId, ip: req.ip };
      return { mappings: await lookup.lookup(caller, body.addresses, body.algorithm, body.pepper) };
    },
    authed,
  );
}

/** Legacy v1 `GET lookup` (one signed association) and `POST bulk_lookup` (no auth). */
export function registerV1LookupRoutes(routes: RouteTable, lookup: BudgetedLookup) {
  routes.add("GET", `${V1.prefix}/lookup`, async (req) => {
    const medium = queryString(req.query, "medium");
    const address = queryString(req.query, "address");
    if (!medium || !address) throw missingParams("Missing parameters: medium, address");
    return (await lookup.lookupSigned(req.ip, medium, address)) ?? {};
  });
  routes.add("POST", `${V1.prefix}/bulk_lookup`, async (req) => {
    const body = bodyObject(req.body);
    requireKeys(body, ["threepids"]);
    return { threepids: await lookup.bulkLookup(req.ip, body.threepids) };
  });
}
