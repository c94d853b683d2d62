import { MatrixError } from "../core/errors.js";
import { endpoint } from "../http/endpoint.js";
import { anyString, nullable, number, object, string } from "../http/schema.js";
import type { AccountService } from "../services/accounts.js";

interface RegisterBody {
  access_token: string;
  matrix_server_name: string;
  token_type?: string | null;
  expires_in?: number | null;
}

/** The v2 account endpoints: register with an OpenID token, who am I, log out. */
export function accountEndpoints(accounts: AccountService) {
  return {
    /** # `POST /_matrix/identity/v2/account/register` */
    register: endpoint<{ Body: RegisterBody }>({
      schema: {
        // Only access_token and matrix_server_name are required (as in sydent; older clients send nothing
        // else). token_type, when given, must be Bearer; expires_in, when given, a number.
        body: object(
          { access_token: string(4096), matrix_server_name: string(300) },
          { token_type: nullable(anyString(64)), expires_in: nullable(number()) },
        ),
      },
      async handle(req) {
        const b = req.body;
        const tokenType = b.token_type ?? "Bearer";
        if (tokenType !== "Bearer") throw new MatrixError("M_INVALID_PARAM", "token_type must be 'Bearer'");
        const expiresIn = b.expires_in ?? undefined;
        if (expiresIn !== undefined && !Number.isFinite(expiresIn))
          throw new MatrixError("M_INVALID_PARAM", "expires_in must be a number");
        const token = await accounts.register({
          accessToken: b.access_token,
          tokenType,
          matrixServerName: b.matrix_server_name,
          expiresIn,
        });
        return { token, access_token: token };
      },
    }),

    /** # `GET /_matrix/identity/v2/account` */
    whoami: endpoint({
      response: { 200: { type: "object", properties: { user_id: { type: "string" } } } },
      async handle(req) {
        return { user_id: req.caller!.userId };
      },
    }),

    /** # `POST /_matrix/identity/v2/account/logout` */
    logout: endpoint({
      async handle(req) {
        await accounts.logout(req.caller!);
        return {};
      },
    }),
  };
}
