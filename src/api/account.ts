import { bodyObject, requireString } from "../http/params.js";
import type { RouteOptions, RouteTable } from "../http/routes.js";
import { V2 } from "../http/routes.js";
import type { AccountService } from "../identity/accounts.js";
import { MatrixError } from "../identity/errors.js";

/** `POST /account/register`, `GET /account`, `POST /account/logout` (v2 only). */
export function registerAccountRoutes(
  routes: RouteTable,
  accounts: AccountService,
  opts: {
    /** For `GET /account`: token and accepted terms (Element starts its terms dialog from the 403). */
    auth: RouteOptions["preHandler"];
    authNoTerms: RouteOptions["preHandler"];
    registerPerMinute?: number;
    authPerMinute?: number;
  },
): void {
  routes.add(
    "POST",
    `${V2.prefix}/account/register`,
    async (req) => {
      const body = bodyObject(req.body);
      // Only access_token and matrix_server_name are required (as in sydent; older clients send nothing
      // else). token_type, when given, must be Bearer; expires_in, when given, a number.
      const accessToken = requireString(body, "access_token", 4096);
      const matrixServerName = requireString(body, "matrix_server_name", 300);
      const tokenType = body.token_type ?? "Bearer";
      if (tokenType !== "Bearer")
        throw new MatrixError(400, "M_INVALID_PARAM", "token_type must be 'Bearer'");
      const expiresIn = body.expires_in ?? undefined;
      if (expiresIn !== undefined && (typeof expiresIn !== "number" || !Number.isFinite(expiresIn))) {
        throw new MatrixError(400, "M_INVALID_PARAM", "expires_in must be a number");
      }
      const token = await accounts.register({ accessToken, tokenType, matrixServerName, expiresIn });
      return { token, access_token: token };
    },
    { perMinute: opts.registerPerMinute },
  );

  const authed = { preHandler: opts.authNoTerms, perMinute: opts.authPerMinute };
  routes.add("GET", `${V2.prefix}/account`, async (req) => ({ user_id: req.caller!.userId }), {
    preHandler: opts.auth,
    perMinute: opts.authPerMinute,
  });
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
