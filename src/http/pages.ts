import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Eta } from "eta";
import { resolveBrand } from "../delivery/index.js";

type Compiled = ReturnType<Eta["compile"]>;

const FALLBACK_PAGE =
  '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Verification</title></head>' +
  "<body><p><%= it.message %></p></body></html>";

/**
 * Renders the HTML pages a person sees in a browser (GET submitToken), from the brand's
 * `verify_response_template.html` (eta, every value HTML-escaped). Operators replace the file to restyle it.
 */
export class PageRenderer {
  private readonly eta = new Eta({ autoEscape: true, useWith: false, varName: "it", autoTrim: false });
  private readonly compiled = new Map<string, Compiled>();

  constructor(
    private readonly templatesDir: string,
    private readonly defaultBrand: string,
  ) {}

  verifyResponse(
    brand: string | undefined,
    vars: { success: boolean; message: string; medium: string },
  ): string {
    const dir = resolveBrand(this.templatesDir, brand, this.defaultBrand);
    let path = join(this.templatesDir, dir, "verify_response_template.html");
    if (!existsSync(path)) path = join(this.templatesDir, this.defaultBrand, "verify_response_template.html");
    let fn = this.compiled.get(path);
    if (fn === undefined) {
      // Without an operator page, a plain built-in one (the session is validated either way).
      const source = existsSync(path) ? readFileSync(path, "utf8") : FALLBACK_PAGE;
      fn = this.eta.compile(source);
      this.compiled.set(path, fn);
    }
    return this.eta.render(fn, {
      success: vars.success ? "true" : "false",
      message: vars.message,
      medium: vars.medium,
    });
  }
}
