import { endpoint } from "../http/endpoint.js";
import { anyString, array, object } from "../http/schema.js";
import type { AccountService } from "../services/accounts.js";
import type { Terms } from "../services/terms.js";

/** The terms of service: what they are, and a user accepting them. */
export function termsEndpoints(terms: Terms, accounts: AccountService) {
  const answer = JSON.stringify({ policies: terms.policies });
  return {
    /** # `GET /_matrix/identity/v2/terms` */
    get: endpoint({
      async handle(_req, reply) {
        reply.type("application/json; charset=utf-8");
        return answer;
      },
    }),

    /** # `POST /_matrix/identity/v2/terms` */
    accept: endpoint<{ Body: { user_accepts: string[] } }>({
      schema: { body: object({ user_accepts: { ...array(anyString(4096)), maxItems: 1000 } }) },
      async handle(req) {
        await accounts.acceptTerms(req.caller!, req.body.user_accepts);
        return {};
      },
    }),
  };
}
