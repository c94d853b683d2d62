import type { FastifyReply, FastifyRequest } from "fastify";
import type { PageRenderer } from "../http/pages.js";
import { bodyObject, optionalString, queryString, requireKeys } from "../http/params.js";
import type { ApiMount, RouteOptions, RouteTable } from "../http/routes.js";
import { MatrixError } from "../identity/errors.js";
import type { NextLinkPolicy } from "../identity/next-link.js";
import type { ValidationService } from "../identity/validation.js";

export interface ValidationRouteOptions {
  /** v2: authentication and terms; v1: none. */
  auth: RouteOptions["preHandler"];
  requestTokenPerMinute?: number | undefined;
  authPerMinute?: number | undefined;
  pages: PageRenderer;
  nextLinks: NextLinkPolicy;
}

/** `validate/{email,msisdn}/{requestToken,submitToken}` (POST, and GET submitToken for browsers). */
export function registerValidationRoutes(
  routes: RouteTable,
  mount: ApiMount,
  validation: ValidationService,
  opts: ValidationRouteOptions,
): void {
  const request = { preHandler: opts.auth, perMinute: opts.requestTokenPerMinute };
  const authed = { preHandler: opts.auth, perMinute: opts.authPerMinute };

  routes.add(
    "POST",
    `${mount.prefix}/validate/email/requestToken`,
    async (req) => {
      const body = bodyObject(req.body);
      requireKeys(body, ["client_secret", "email", "send_attempt"]);
      return validation.requestEmailToken(body.email, {
        clientSecret: body.client_secret,
        sendAttempt: body.send_attempt,
        nextLink: optionalString(body, "next_link", 4096),
        brand: queryString(req.query, "brand"),
        ip: req.ip,
      });
    },
    request,
  );

  routes.add(
    "POST",
    `${mount.prefix}/validate/msisdn/requestToken`,
    async (req) => {
      const body = bodyObject(req.body);
      requireKeys(body, ["client_secret", "country", "phone_number", "send_attempt"]);
      return validation.requestMsisdnToken(body.country, body.phone_number, {
        clientSecret: body.client_secret,
        sendAttempt: body.send_attempt,
        nextLink: optionalString(body, "next_link", 4096),
      });
    },
    request,
  );

  for (const medium of ["email", "msisdn"] as const) {
    routes.add(
      "POST",
      `${mount.prefix}/validate/${medium}/submitToken`,
      async (req) => {
        const body = bodyObject(req.body);
        requireKeys(body, ["sid", "client_secret", "token"]);
        await validation.submitToken(body.sid, body.client_secret, body.token);
        return { success: true };
      },
      authed,
    );

    // What a person's browser opens from the email: no auth, HTML, or a redirect to an allowed next_link.
    routes.add("GET", `${mount.prefix}/validate/${medium}/submitToken`, async (req, reply) =>
      submitFromBrowser(req, reply, medium, validation, opts),
    );
  }
}

async function submitFromBrowser(
  req: FastifyRequest,
  reply: FastifyReply,
  medium: string,
  validation: ValidationService,
  opts: ValidationRouteOptions,
): Promise<string | FastifyReply> {
  const q = (name: string) => queryString(req.query, name);
  const brand = q("brand");
  reply.type("text/html; charset=utf-8");
  try {
    const sid = q("sid");
    const clientSecret = q("client_secret");
    const token = q("token");
    if (!sid || !clientSecret || !token) {
      throw new MatrixError(
        400,
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
