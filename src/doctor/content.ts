/** Files the server reads at start: the terms of service, and every brand's email templates and page. */
import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ResolvedConfig } from "../config/load.js";
import { Presentation, printfNamed } from "../delivery/brands.js";
import type { TemplateHelpers } from "../delivery/templates.js";
import { TEMPLATE_NAMES, TemplateStore } from "../delivery/templates.js";
import { PageRenderer } from "../http/pages.js";
import { Terms } from "../services/terms.js";
import { errorText, type Report } from "./report.js";

/** Values a template sees in real use (invites and validation), with recognisable test values. */
const SAMPLE_VARS: Record<string, string> = {
  token: "123456",
  link: "https://id.example.org/_matrix/identity/v2/validate/email/submitToken?token=123456",
  address: "alice@example.org",
  ipaddress: "192.0.2.1",
  brand: "",
  room_alias: "#tea:example.org",
  room_avatar_url: "mxc://example.org/avatar",
  room_join_rules: "public",
  room_name: "Tea",
  room_type: "",
  sender: "@bob:example.org",
  sender_avatar_url: "mxc://example.org/bob",
  sender_display_name: "Bob",
  guest_user_id: "",
  guest_access_token: "",
  web_client_location: "https://app.element.io",
  room_id: "!room:example.org",
  medium: "email",
  ephemeral_private_key: "",
};

export function checkTerms(cfg: ResolvedConfig, report: Report): void {
  const g = report.group("terms");
  if (!cfg.terms.path) {
    g.pass("terms file", "none configured (no terms to accept)");
    return;
  }
  try {
    const terms = Terms.load(cfg.terms.path);
    const n = Object.keys(terms.policies).length;
    g.pass("terms file", `${resolve(cfg.terms.path)}: ${n} polic${n === 1 ? "y" : "ies"}`);
  } catch (e) {
    g.fail(
      "terms file",
      errorText(e),
      "fix the YAML (sydent's shape: master_version, docs.<id>.version/langs)",
    );
  }
}

export async function checkTemplates(cfg: ResolvedConfig, report: Report): Promise<void> {
  const g = report.group("templates");
  const dir = resolve(cfg.email.templates_dir);
  let brands: string[];
  try {
    brands = readdirSync(dir).filter(
      // locales/ holds the message catalogues, not a brand.
      (d) => !d.startsWith(".") && d !== "locales" && statSync(join(dir, d)).isDirectory(),
    );
  } catch (e) {
    g.fail("templates_dir", errorText(e), "set email.templates_dir to a folder with one folder per brand");
    return;
  }
  if (!brands.includes(cfg.email.default_brand)) {
    g.fail(
      "default brand",
      `${join(dir, cfg.email.default_brand)} does not exist; brands: ${brands.join(", ") || "(none)"}`,
      "set email.default_brand to one of the brands, or copy templates/matrix-org there",
    );
  }
  const store = new TemplateStore(dir);
  const look = new Presentation({
    templatesDir: dir,
    defaultBrand: cfg.email.default_brand,
    brands: cfg.email.brands,
  });
  const pages = new PageRenderer(look);
  for (const brand of brands) {
    const problems: string[] = [];
    const settings = look.brand(brand);
    const lang = settings.default_language;
    const ctx = {
      to: "alice@example.org",
      from: cfg.email.from,
      messageIdHost: "example.org",
      look: look.lookVars({ brand: settings, lang }),
      helpers: (value: (name: string) => string): TemplateHelpers => ({
        t: (key, params) => look.t(lang, key, params),
        printf: (format) => printfNamed(format, value),
      }),
    };
    for (const name of TEMPLATE_NAMES) {
      try {
        const loaded = await store.load(brand, name);
        if (loaded.kind === "raw") store.renderRaw(loaded, SAMPLE_VARS, { ...ctx, template: name });
        else store.renderStructured(loaded, SAMPLE_VARS, { ...ctx, template: name });
      } catch (e) {
        problems.push(`${name}: ${errorText(e).slice(0, 200)}`);
      }
    }
    try {
      pages.page("success", { brand, lang, medium: "email" });
    } catch (e) {
      problems.push(`verify_response_template.html: ${errorText(e).slice(0, 200)}`);
    }
    if (problems.length)
      g.fail(
        `brand ${brand}`,
        problems.join("; "),
        `fix the templates in ${join(dir, brand)} (templates/README.md)`,
      );
    else g.pass(`brand ${brand}`, `${TEMPLATE_NAMES.join(", ")} and the result page render`);
  }
}
