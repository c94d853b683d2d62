import type { FastifyReply, FastifyRequest } from "fastify";
import { MatrixError } from "../core/errors.js";
import { endpoint } from "../http/endpoint.js";
import { type PageKind, type PageRenderer, pageReply } from "../http/pages.js";
import { anyString, nullable, object, present, string } from "../http/schema.js";
import type { NextLinkPolicy } from "../services/next-link.js";
import { SessionClosedError, type SessionLook, type ValidationService } from "../services/validation.js";

const sendAttempt = {
  anyOf: [
    { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    { type: "string", pattern: "^\\d{1,15}$" },
  ],
};
const clientSecret = string(255, { pattern: "^[0-9a-zA-Z.=_-]{1,255}$" });
const nextLink = nullable(anyString(4096));
const lang = nullable(anyString(64));

interface RequestTokenBody {
  client_secret: string;
  send_attempt: number | string;
  next_link?: string | null;
  /** An optional extension: the language of the mails and pages of this session. */
  lang?: string | null;
}
interface SubmitTokenBody {
  sid: string;
  client_secret: string;
  token: string;
}
type BrowserQuery = { sid?: string; client_secret?: string; token?: string; brand?: string };

interface BrowserOptions {
  pages: PageRenderer;
  nextLinks: NextLinkPolicy;
  /** `validation.confirm_link_with_button`: the emailed link shows a button; only its POST validates. */
  confirmWithButton: boolean;
  /** Recognises errors that mean the database is down (the page then says "temporarily unavailable"). */
  isUnavailable: (err: Error) => boolean;
}

/** The brand and language of a new session: `?brand=`, then the optional `lang` field, Accept-Language. */
function requestLook(
  req: FastifyRequest<{ Querystring: { brand?: string } }>,
  lang: string | null | undefined,
  opts: BrowserOptions,
) {
  const look = opts.pages.presentation;
  const requested = req.query.brand;
  const brand = look.isBrand(requested) ? requested : undefined;
  return { brand, lang: look.chooseLanguage(lang ?? undefined, req.headers["accept-language"], brand) };
}

const mediumOf = (req: FastifyRequest): "email" | "msisdn" =>
  req.routeOptions.url?.includes("/validate/msisdn/") ? "msisdn" : "email";

/** Email and phone validation: request a token, submit it (by a client, or by a person's browser). */
export function validationEndpoints(validation: ValidationService, opts: BrowserOptions) {
  const submit = endpoint<{ Body: SubmitTokenBody }>({
    schema: { body: object({ sid: string(255), client_secret: string(255), token: string(255) }) },
    async handle(req, reply) {
      // The confirmation page's form (validation.confirm_link_with_button) gets a page, not JSON.
      if (opts.confirmWithButton && isConfirmForm(req)) {
        return browserSubmit(req, reply, mediumOf(req), validation, opts, req.body, true);
      }
      await validation.submitToken(req.body.sid, req.body.client_secret, req.body.token);
      return { success: true };
    },
  });
  const submitFromBrowser = (medium: "email" | "msisdn") =>
    endpoint<{ Querystring: BrowserQuery }>({
      async handle(req, reply) {
        return browserSubmit(req, reply, medium, validation, opts, req.query, !opts.confirmWithButton);
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
          { next_link: nextLink, lang },
        ),
      },
      async handle(req) {
        const b = req.body;
        if (typeof b.email !== "string") throw new MatrixError("M_INVALID_EMAIL", "Invalid email address");
        return validation.requestEmailToken(b.email, {
          clientSecret: b.client_secret,
          sendAttempt: Number(b.send_attempt),
          nextLink: b.next_link ?? undefined,
          ...requestLook(req, b.lang, opts),
          ip: req.ip,
        });
      },
    }),

    /** # `POST /_matrix/identity/v2/validate/msisdn/requestToken` */
    requestMsisdnToken: endpoint<{
      Body: RequestTokenBody & { country: string; phone_number: string };
      Querystring: { brand?: string };
    }>({
      schema: {
        body: object(
          {
            client_secret: clientSecret,
            country: string(2, { pattern: "^[A-Za-z]{2}$" }),
            phone_number: string(),
            send_attempt: sendAttempt,
          },
          { next_link: nextLink, lang },
        ),
      },
      async handle(req) {
        const b = req.body;
        return validation.requestMsisdnToken(b.country, b.phone_number, {
          clientSecret: b.client_secret,
          sendAttempt: Number(b.send_attempt),
          nextLink: b.next_link ?? undefined,
          ...requestLook(req, b.lang, opts),
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

/** The browser's form of `validation.confirm_link_with_button` (posted by the confirmation page). */
export function isConfirmForm(req: FastifyRequest): boolean {
  const type = req.headers["content-type"] ?? "";
  const body = req.body;
  return (
    type.startsWith("application/x-www-form-urlencoded") &&
    typeof body === "object" &&
    body !== null &&
    (body as Record<string, unknown>).confirm === "1"
  );
}

function field(source: object | undefined, name: string): string | undefined {
  const v = source === undefined ? undefined : (source as Record<string, unknown>)[name];
  if (Array.isArray(v)) return typeof v[0] === "string" ? v[0] : undefined;
  return typeof v === "string" ? v : undefined;
}

/**
 * What a person's browser gets for the emailed link: a page in the browser's language (else the
 * session's) with the session's brand, or a redirect to an allowed next_link. `source` holds the
 * parameters: the query of a GET, the form of the confirmation page's POST.
 */
async function browserSubmit(
  req: FastifyRequest,
  reply: FastifyReply,
  medium: string,
  validation: ValidationService,
  opts: BrowserOptions,
  source: object | undefined,
  validate: boolean,
): Promise<string | FastifyReply> {
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
      stored = await validation.sessionLook(sid ?? "", clientSecret ?? "").catch(() => undefined);
      if (e instanceof SessionClosedError) return show("locked", 400, e.attempts);
      if (e.errcode === "M_SESSION_EXPIRED") return show("expired", 400);
      if (e.errcode === "M_TOKEN_INCORRECT") return show("wrong_token", 400);
      return show("error", e.status);
    }
    // A person gets a page, not JSON, also when the database is down.
    const unavailable = e instanceof Error && opts.isUnavailable(e);
    if (unavailable) req.log.warn({ err: e, reqId: req.id }, "dependency unavailable");
    else req.log.error({ err: e, reqId: req.id }, "unexpected error");
    return show(unavailable ? "unavailable" : "error", unavailable ? 503 : 500);
  }
}
