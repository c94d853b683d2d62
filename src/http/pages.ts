import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Eta } from "eta";
import type { FastifyReply } from "fastify";
import { type Presentation, printfNamed } from "../delivery/brands.js";

type Compiled = ReturnType<Eta["compile"]>;

/** What a person sees after opening a verification link. */
export type PageKind =
  | "success"
  | "wrong_token"
  | "expired"
  | "locked"
  | "unknown_session"
  | "incomplete"
  | "unavailable"
  | "error";

export const PAGE_KINDS: readonly PageKind[] = [
  "success",
  "wrong_token",
  "expired",
  "locked",
  "unknown_session",
  "incomplete",
  "unavailable",
  "error",
];

const FALLBACK_PAGE =
  '<!DOCTYPE html><html lang="<%= it.lang %>"><head><meta charset="utf-8"><title><%= it.title %></title></head>' +
  "<body><h1><%= it.title %></h1><p><%= it.message %></p></body></html>";

const FALLBACK_CONFIRM =
  '<!DOCTYPE html><html lang="<%= it.lang %>"><head><meta charset="utf-8"><title><%= it.title %></title></head>' +
  '<body><h1><%= it.title %></h1><form method="post" action="<%= it.action %>">' +
  '<input type="hidden" name="sid" value="<%= it.sid %>"><input type="hidden" name="client_secret" value="<%= it.client_secret %>">' +
  '<input type="hidden" name="token" value="<%= it.token %>"><input type="hidden" name="confirm" value="1">' +
  '<button type="submit"><%= it.button %></button></form></body></html>';

/**
 * Headers of every HTML page: no scripts, no framing, no caching (the URL carries a token), no referrer
 * (a click on a link of the page would send the token along), no content sniffing. Forms may post
 * anywhere a redirect to an allowed `next_link` may lead, so `form-action` is not restricted.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy":
    "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
};

/** Sets {@link PAGE_HEADERS}, the status and the page's `Content-Language`. */
export function pageReply(reply: FastifyReply, status: number, lang: string): FastifyReply {
  return reply.headers(PAGE_HEADERS).header("content-language", lang).code(status);
}

export interface PageInput {
  brand?: string | undefined;
  lang: string;
  medium: string;
  /** For `locked`: the number of wrong attempts after which the session closed. */
  count?: number | undefined;
}

export interface ConfirmInput extends PageInput {
  /** The form's target (the submitToken path). */
  action: string;
  sid: string;
  clientSecret: string;
  token: string;
}

/**
 * Renders the HTML pages a person sees in a browser (GET submitToken), from the brand's
 * `verify_response_template.html` and `confirm_link_template.html` (eta, every value HTML-escaped),
 * in the page's language with the brand's look. Operators replace the files to restyle them.
 */
export class PageRenderer {
  private readonly eta = new Eta({
    autoEscape: true,
    useWith: false,
    varName: "it",
    autoTrim: false,
    autoFilter: true,
    filterFunction: (v: unknown) => (v === undefined || v === null ? "" : String(v)),
  });
  private readonly compiled = new Map<string, Compiled>();

  constructor(private readonly look: Presentation) {}

  get presentation(): Presentation {
    return this.look;
  }

  private template(brand: string, file: string, fallback: string): Compiled {
    const dir = this.look.templatesDir;
    let path = join(dir, brand, file);
    if (!existsSync(path)) path = join(dir, this.look.defaultBrand, file);
    let fn = this.compiled.get(path);
    if (fn === undefined) {
      const source = existsSync(path) ? readFileSync(path, "utf8") : fallback;
      fn = this.eta.compile(source);
      this.compiled.set(path, fn);
    }
    return fn;
  }

  private data(input: PageInput, extra: Record<string, string>): Record<string, unknown> {
    const brand = this.look.brand(input.brand);
    const lang = input.lang;
    const values: Record<string, string> = {
      ...this.look.lookVars({ brand, lang }),
      medium: input.medium,
      operated_by: this.look.t(lang, "common.operated_by", { operator: brand.display_name }),
      support: brand.support_email
        ? this.look.t(lang, "common.support", { support_email: brand.support_email })
        : "",
      ...extra,
    };
    return {
      ...values,
      t: (key: string, params?: Record<string, string | number>) => this.look.t(lang, key, params),
      printf: (format: string) => printfNamed(format, (n) => values[n] ?? ""),
    };
  }

  /** A result page. Variables: `success` (`"true"`/`"false"`), `kind`, `title`, `message`, `medium`, brand and language. */
  page(kind: PageKind, input: PageInput): string {
    const brand = this.look.brandName(input.brand);
    const lang = input.lang;
    const t = (key: string) => this.look.t(lang, key, { count: input.count ?? 0 });
    const title = kind === "success" ? t(`page.success.title_${input.medium}`) : t(`page.${kind}.title`);
    const fn = this.template(brand, "verify_response_template.html", FALLBACK_PAGE);
    return this.eta.render(
      fn,
      this.data(input, {
        success: kind === "success" ? "true" : "false",
        kind,
        title,
        message: t(`page.${kind}.message`),
      }),
    );
  }

  /** The page with one button that POSTs the token (`validation.confirm_link_with_button`). */
  confirm(input: ConfirmInput): string {
    const brand = this.look.brandName(input.brand);
    const lang = input.lang;
    const fn = this.template(brand, "confirm_link_template.html", FALLBACK_CONFIRM);
    return this.eta.render(
      fn,
      this.data(input, {
        kind: "confirm",
        title: this.look.t(lang, `page.confirm.title_${input.medium}`),
        message: this.look.t(lang, "page.confirm.message"),
        button: this.look.t(lang, "page.confirm.button"),
        action: input.action,
        sid: input.sid,
        client_secret: input.clientSecret,
        token: input.token,
        brand: input.brand ?? "",
      }),
    );
  }
}
