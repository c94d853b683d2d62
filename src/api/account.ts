import { MatrixError } from "../core/errors.js";
import { endpoint } from "../http/endpoint.js";
import { number, object, string } from "../http/schema.js";
import type { AccountService } from "../services/accounts.js";

interface RegisterBody {
  access_token: string;
  token_type: string;
  matrix_server_name: string;
  expires_in: number;
}

/** The v2 account endpoints: register with an OpenID token, who am I, log out. */
export function accountEndpoints(accounts: AccountService) {
  return {
    /** # `POST /_matrix/identity/v2/account/register` */
    register: endpoint<{ Body: RegisterBody }>({
      schema: {
        body: object({
          access_token: string(4096),
          token_type: string(64),
          matrix_server_name: string(300),
          expires_in: number(),
        }),
      },
      async handle(req) {
        const b = req.body;
        if (!Number.isFinite(b.expires_in))
          throw new MatrixError("M_INVALID_PARAM", "expires_in must be a number");
        const token = await accounts.register({
          accessToken: b.access_token,
          tokenType: b.token_type,
          matrixServerName: b.matrix_server_name,
          expiresIn: b.expires_in,
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
