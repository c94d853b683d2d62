import type { FastifyReply, FastifyRequest } from "fastify";
import { type PageKind, type PageRenderer, pageReply } from "../http/pages.js";
import { bodyObject, optionalString, queryString, requireKeys } from "../http/params.js";
import type { ApiMount, RouteOptions, RouteTable } from "../http/routes.js";
import { MatrixError } from "../identity/errors.js";
import type { NextLinkPolicy } from "../identity/next-link.js";
import { SessionClosedError, type SessionLook, type ValidationService } from "../identity/validation.js";

export interface ValidationRouteOptions {
  /** v2: authentication and terms; v1: none. */
  auth: RouteOptions["preHandler"];
  requestTokenPerMinute?: number | undefined;
  authPerMinute?: number | undefined;
  pages: PageRenderer;
  nextLinks: NextLinkPolicy;
  /** `validation.confirm_link_with_button`: the emailed link shows a button; only its POST validates. */
  confirmWithButton?: boolean | undefined;
  /** Recognises errors that mean the database is down (the page then says "temporarily unavailable"). */
  isUnavailable?: ((err: unknown) => boolean) | undefined;
}

/** The language of a new session: the optional `lang` field, then Accept-Language, then the brand's. */
function requestLook(req: FastifyRequest, body: Record<string, unknown>, opts: ValidationRouteOptions) {
  const look = opts.pages.presentation;
  const requested = queryString(req.query, "brand");
  const brand = look.isBrand(requested) ? requested : undefined;
  const lang = look.chooseLanguage(optionalString(body, "lang", 64), req.headers["accept-language"], brand);
  return { brand, lang };
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
        ...requestLook(req, body, opts),
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
        ...requestLook(req, body, opts),
      });
    },
    request,
  );

  // The confirmation page's form is posted by a browser, without an access token: it proves no more
  // than the GET of the link does (sid, client_secret and token), so it is let through like the GET.
  const submitAuth = authed.preHandler;
  const submitPreHandler =
    opts.confirmWithButton && submitAuth
      ? async (req: FastifyRequest, reply: FastifyReply) =>
          isConfirmForm(req) ? undefined : submitAuth(req, reply)
      : submitAuth;
  for (const medium of ["email", "msisdn"] as const) {
    routes.add(
      "POST",
      `${mount.prefix}/validate/${medium}/submitToken`,
      async (req, reply) => {
        if (opts.confirmWithButton && isConfirmForm(req)) {
          return submitFromBrowser(req, reply, medium, validation, opts, req.body, true);
        }
        const body = bodyObject(req.body);
        requireKeys(body, ["sid", "client_secret", "token"]);
        await validation.submitToken(body.sid, body.client_secret, body.token);
        return { success: true };
      },
      { ...authed, preHandler: submitPreHandler },
    );

    // What a person's browser opens from the email: no auth, HTML, or a redirect to an allowed next_link.
    routes.add("GET", `${mount.prefix}/validate/${medium}/submitToken`, async (req, reply) =>
      submitFromBrowser(req, reply, medium, validation, opts, req.query, !opts.confirmWithButton),
    );
  }
}

/** The browser's form of `validation.confirm_link_with_button` (posted by the confirmation page). */
function isConfirmForm(req: FastifyRequest): boolean {
  const type = req.headers["content-type"] ?? "";
  const body = req.body;
  return (
    type.startsWith("application/x-www-form-urlencoded") &&
    typeof body === "object" &&
    body !== null &&
    (body as Record<string, unknown>).confirm === "1"
  );
}

function field(source: unknown, name: string): string | undefined {
  return queryString(source, name);
}

/**
 * What a person's browser gets for the emailed link: a page in the browser's language (else the
 * session's) with the session's brand, or a redirect to an allowed next_link. `source` holds the
 * parameters: the query of a GET, the form of the confirmation page's POST.
 */
async function submitFromBrowser(
  req: FastifyRequest,
  reply: FastifyReply,
  medium: string,
  validation: ValidationService,
  opts: ValidationRouteOptions,
  source: unknown,
  validate: boolean,
): Promise<unknown> {
  const look = opts.pages.presentation;
  const acceptLanguage = req.headers["accept-language"];
  const sid = field(source, "sid");
  const clientSecret = field(source, "client_secret");
  const token = field(source, "token");
  const requested = field(source, "brand");
  let stored: SessionLook | undefined;
  const show = (kind: PageKind, status: number, count?: number) => {
    const brand = look.isBrand(requested) ? requested : (stored?.brand ?? undefined);
    const lang = look.pageLanguage(acceptLanguage, stored?.lang, brand);
    pageReply(reply, status, lang);
    return opts.pages.page(kind, { brand, lang, medium, count });
  };
  try {
    if (!sid || !clientSecret || !token) return show("incomplete", 400);
    if (!validate) {
      // Link scanners fetch the link; only a person presses the button (which POSTs it).
      stored = await validation.sessionLook(sid, clientSecret);
      if (!stored) return show("unknown_session", 400);
      const brand = look.isBrand(requested) ? requested : (stored.brand ?? undefined);
      const lang = look.pageLanguage(acceptLanguage, stored.lang, brand);
      pageReply(reply, 200, lang);
      return opts.pages.confirm({
        brand,
        lang,
        medium,
        // Relative, so that it also works behind a proxy that serves Seraph under a path prefix.
        action: "submitToken",
        sid,
        clientSecret,
        token,
      });
    }
    const result = await validation.submitToken(sid, clientSecret, token);
    stored = result;
    if (result.nextLink !== null && opts.nextLinks.allows(result.nextLink)) {
      reply.headers({ "referrer-policy": "no-referrer", "cache-control": "no-store" });
      return reply.redirect(result.nextLink, validate && req.method === "POST" ? 303 : 302);
    }
    return show("success", 200);
  } catch (e) {
    if (e instanceof MatrixError && e.status < 500) {
      if (e.errcode === "M_INVALID_PARAM") return show("unknown_session", 400);
      stored = await validation.sessionLook(sid, clientSecret).catch(() => undefined);
      if (e instanceof SessionClosedError) return show("locked", 400, e.attempts);
      if (e.errcode === "M_SESSION_EXPIRED") return show("expired", 400);
      if (e.errcode === "M_TOKEN_INCORRECT") return show("wrong_token", 400);
      return show("error", e.status);
    }
    // A person gets a page, not JSON, also when the database is down.
    const unavailable = opts.isUnavailable?.(e) ?? false;
    if (unavailable) req.log.warn({ err: e, reqId: req.id }, "dependency unavailable");
    else req.log.error({ err: e, reqId: req.id }, "unexpected error");
    return show(unavailable ? "unavailable" : "error", unavailable ? 503 : 500);
  }
}
