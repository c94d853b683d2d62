import { MatrixError } from "../core/errors.js";
import { bodyObject, requireKeys, requireString } from "../http/params.js";
import type { RouteOptions, RouteTable } from "../http/routes.js";
import { V2 } from "../http/routes.js";
import type { AccountService } from "../services/accounts.js";

/** `POST /account/register`, `GET /account`, `POST /account/logout` (v2 only). */
export function registerAccountRoutes(
  routes: RouteTable,
  accounts: AccountService,
  opts: { authNoTerms: RouteOptions["preHandler"]; registerPerMinute?: number; authPerMinute?: number },
): void {
  routes.add(
    "POST",
    `${V2.prefix}/account/register`,
    async (req) => {
      const body = bodyObject(req.body);
      requireKeys(body, ["access_token", "token_type", "matrix_server_name", "expires_in"]);
      const expiresIn = body.expires_in;
      if (typeof expiresIn !== "number" || !Number.isFinite(expiresIn)) {
        throw new MatrixError(400, "M_INVALID_PARAM", "expires_in must be a number");
      }
      const token = await accounts.register({
        accessToken: requireString(body, "access_token", 4096),
        tokenType: requireString(body, "token_type", 64),
        matrixServerName: requireString(body, "matrix_server_name", 300),
        expiresIn,
      });
      return { token, access_token: token };
    },
    { perMinute: opts.registerPerMinute },
  );

  const authed = { preHandler: opts.authNoTerms, perMinute: opts.authPerMinute };
  routes.add("GET", `${V2.prefix}/account`, async (req) => ({ user_id: req.caller!.userId }), authed);
  routes.add(
    "POST",
    `${V2.prefix}/account/logout`,
    async (req) => {
      await accounts.logout(req.caller!);
      return {};
    },
    authed,
  );
}
