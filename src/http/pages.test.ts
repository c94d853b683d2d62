import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PACKAGE_TEMPLATES_DIR } from "../core/package-root.js";
import { Presentation } from "../delivery/brands.js";
import { PAGE_KINDS, PageRenderer } from "./pages.js";

function renderer(messages: Record<string, string> = {}, brands = {}) {
  const dir = mkdtempSync(join(tmpdir(), "seraph-pages-"));
  cpSync(join(PACKAGE_TEMPLATES_DIR, "matrix-org"), join(dir, "matrix-org"), { recursive: true });
  mkdirSync(join(dir, "locales"));
  writeFileSync(join(dir, "locales", "en.json"), JSON.stringify(messages));
  return new PageRenderer(new Presentation({ templatesDir: dir, defaultBrand: "matrix-org", brands }));
}

describe("verify_response_template.html", () => {
  it("renders every kind of page in every shipped language, with one h1 and no placeholder", () => {
    const pages = renderer();
    for (const lang of ["en", "fr", "de", "es"]) {
      for (const kind of PAGE_KINDS) {
        const html = pages.page(kind, { lang, medium: "email", count: 5 });
        expect(html).toContain(`<html lang="${lang}" dir="ltr">`);
        expect(html.match(/<h1/g)).toHaveLength(1);
        expect(html).not.toMatch(/undefined|\{[a-z_]+\}|page\.[a-z_]+\./);
        expect(html).toContain("matrix.org");
      }
    }
  });

  it("escapes every value, messages of catalogues included", () => {
    const pages = renderer(
      { "page.success.message": "Verified <b>you</b>" },
      { evil: { display_name: '<img src=x onerror="alert(1)">' } },
    );
    const html = pages.page("success", { lang: "en", medium: "email", brand: "evil" });
    expect(html).toContain("Verified &lt;b&gt;you&lt;/b&gt;");
    expect(html).not.toContain("<img src=x");
    expect(html).toContain("&lt;img src=x");
  });

  it("puts the session's fields into the confirmation form, escaped", () => {
    const html = renderer().confirm({
      lang: "de",
      medium: "msisdn",
      action: "/_matrix/identity/v2/validate/msisdn/submitToken",
      sid: 'a"b',
      clientSecret: "cs",
      token: "123456",
    });
    expect(html).toContain("Bestätigen Sie Ihre Telefonnummer");
    expect(html).toContain('value="a&quot;b"');
    expect(html).toContain('action="/_matrix/identity/v2/validate/msisdn/submitToken"');
    expect(html.match(/<button/g)).toHaveLength(1);
  });
});
