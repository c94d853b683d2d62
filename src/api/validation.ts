import type { FastifyReply, FastifyRequest } from "fastify";
import { MatrixError } from "../core/errors.js";
import { endpoint } from "../http/endpoint.js";
import type { PageRenderer } from "../http/pages.js";
import { anyString, nullable, object, present, string } from "../http/schema.js";
import type { NextLinkPolicy } from "../services/next-link.js";
import type { ValidationService } from "../services/validation.js";

const sendAttempt = {
  anyOf: [
    { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    { type: "string", pattern: "^\\d{1,15}$" },
  ],
};
const clientSecret = string(255, { pattern: "^[0-9a-zA-Z.=_-]{1,255}$" });
const nextLink = nullable(anyString(4096));

interface RequestTokenBody {
  client_secret: string;
  send_attempt: number | string;
  next_link?: string | null;
}
interface SubmitTokenBody {
  sid: string;
  client_secret: string;
  token: string;
}
type BrowserQuery = { sid?: string; client_secret?: string; token?: string; brand?: string };

/** Email and phone validation: request a token, submit it (by a client, or by a person's browser). */
export function validationEndpoints(
  validation: ValidationService,
  opts: { pages: PageRenderer; nextLinks: NextLinkPolicy },
) {
  const submit = endpoint<{ Body: SubmitTokenBody }>({
    schema: { body: object({ sid: string(255), client_secret: string(255), token: string(255) }) },
    async handle(req) {
      await validation.submitToken(req.body.sid, req.body.client_secret, req.body.token);
      return { success: true };
    },
  });
  const submitFromBrowser = (medium: "email" | "msisdn") =>
    endpoint<{ Querystring: BrowserQuery }>({
      async handle(req, reply) {
        return browserSubmit(req, reply, medium, validation, opts);
      },
    });

  return {
    /** # `POST /_matrix/identity/v2/validate/email/requestToken` */
    requestEmailToken: endpoint<{
      Body: RequestTokenBody & { email: string | number };
      Querystring: { brand?: string };
    }>({
      schema: {
        body: object(
          { client_secret: clientSecret, email: present(), send_attempt: sendAttempt },
          { next_link: nextLink },
        ),
      },
      async handle(req) {
        const b = req.body;
        if (typeof b.email !== "string") throw new MatrixError("M_INVALID_EMAIL", "Invalid email address");
        return validation.requestEmailToken(b.email, {
          clientSecret: b.client_secret,
          sendAttempt: Number(b.send_attempt),
          nextLink: b.next_link ?? undefined,
          brand: req.query.brand,
          ip: req.ip,
        });
      },
    }),

    /** # `POST /_matrix/identity/v2/validate/msisdn/requestToken` */
    requestMsisdnToken: endpoint<{ Body: RequestTokenBody & { country: string; phone_number: string } }>({
      schema: {
        body: object(
          {
            client_secret: clientSecret,
            country: string(2, { pattern: "^[A-Za-z]{2}$" }),
            phone_number: string(),
            send_attempt: sendAttempt,
          },
          { next_link: nextLink },
        ),
      },
      async handle(req) {
        const b = req.body;
        return validation.requestMsisdnToken(b.country, b.phone_number, {
          clientSecret: b.client_secret,
          sendAttempt: Number(b.send_attempt),
          nextLink: b.next_link ?? undefined,
        });
      },
    }),

    /** # `POST /_matrix/identity/v2/validate/email/submitToken` (and msisdn) */
    submitToken: submit,
    /** # `GET /_matrix/identity/v2/validate/email/submitToken`: the link a person opens from the email. */
    submitEmailFromBrowser: submitFromBrowser("email"),
    /** # `GET /_matrix/identity/v2/validate/msisdn/submitToken` */
    submitMsisdnFromBrowser: submitFromBrowser("msisdn"),
  };
}

/** No auth, HTML answers, or a redirect to an allowed next_link. */
async function browserSubmit(
  req: FastifyRequest<{ Querystring: BrowserQuery }>,
  reply: FastifyReply,
  medium: string,
  validation: ValidationService,
  opts: { pages: PageRenderer; nextLinks: NextLinkPolicy },
): Promise<string | FastifyReply> {
  const { sid, client_secret: clientSecret, token, brand } = req.query;
  reply.type("text/html; charset=utf-8");
  try {
    if (!sid || !clientSecret || !token) {
      throw new MatrixError(
        "M_MISSING_PARAMS",
        "This link is incomplete: sid, client_secret and token are needed",
      );
    }
    const { nextLink } = await validation.submitToken(sid, clientSecret, token);
    if (nextLink !== null && opts.nextLinks.allows(nextLink)) {
      // Returning the reply tells fastify it is sent; returning a value as well would log
      // FST_ERR_REP_ALREADY_SENT with the URL, whose query carries sid, client_secret and token.
      return reply.redirect(nextLink, 302);
    }
    return opts.pages.verifyResponse(brand, {
      success: true,
      medium,
      message:
        "Thank you: your address is verified. You can close this page and return to your Matrix client.",
    });
  } catch (e) {
    if (!(e instanceof MatrixError) || e.status >= 500) throw e;
    reply.code(e.status);
    return opts.pages.verifyResponse(brand, { success: false, medium, message: pageMessage(e) });
  }
}

function pageMessage(e: MatrixError): string {
  switch (e.errcode) {
    case "M_TOKEN_INCORRECT":
      return "This verification link is not valid. Please check that you opened the latest one we sent you.";
    case "M_SESSION_EXPIRED":
      return "This verification link has expired. Please request a new one from your Matrix client.";
    default:
      return `This verification link could not be used: ${e.message}`;
  }
}
