import { MatrixError } from "../core/errors.js";
import { bodyObject, requireKeys } from "../http/params.js";
import type { RouteOptions, RouteTable } from "../http/routes.js";
import { V2 } from "../http/routes.js";
import type { AccountService } from "../services/accounts.js";
import type { Terms } from "../services/terms.js";

/** `GET /terms` (no auth) and `POST /terms` (auth, never gated on terms). */
export function registerTermsRoutes(
  routes: RouteTable,
  terms: Terms,
  accounts: AccountService,
  opts: { authNoTerms: RouteOptions["preHandler"]; authPerMinute?: number },
): void {
  const answer = { policies: terms.policies };
  routes.add("GET", `${V2.prefix}/terms`, async () => answer);
  routes.add(
    "POST",
    `${V2.prefix}/terms`,
    async (req) => {
      const body = bodyObject(req.body);
      requireKeys(body, ["user_accepts"]);
      const urls = body.user_accepts;
      if (!Array.isArray(urls) || urls.length > 1000 || !urls.every((u) => typeof u === "string")) {
        throw new MatrixError(400, "M_INVALID_PARAM", "user_accepts must be a list of URLs");
      }
      await accounts.acceptTerms(req.caller!, urls);
      return {};
    },
    { preHandler: opts.authNoTerms, perMinute: opts.authPerMinute },
  );
}
