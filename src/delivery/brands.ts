/**
 * What people see of the operator: brand settings (`email.brands.<name>`: name, logo, links, colours,
 * default language, invite subjects) and the choice of brand and language for a mail or a page.
 * Shared by the mailer and the page renderer.
 */
import { statSync } from "node:fs";
import path from "node:path";
import { PACKAGE_TEMPLATES_DIR } from "../core/package-root.js";
import { Catalogues, FALLBACK_LANGUAGE, type MessageParams } from "./i18n.js";

export interface BrandColours {
  /** Buttons and headings; must read on `surface` and under `on_primary` text (contrast ≥ 4.5:1). */
  primary: string;
  /** Text on a `primary` background (buttons). */
  on_primary: string;
  /** Body text on `surface`. */
  text: string;
  /** Secondary text (footers) on `surface`. */
  muted: string;
  /** Around the card. */
  background: string;
  /** The card behind the text. */
  surface: string;
  /** Headings of failure pages. */
  error: string;
}

/** A subject in one language for all, or per language (`{en: …, fr: …}`). sydent's `%(name)s` placeholders. */
export type LocalisedText = string | Record<string, string>;

/** The settings of a brand as configured (`email.brands.<name>`); every key optional. */
export interface BrandInput {
  display_name?: string | undefined;
  logo_url?: string | undefined;
  operator_url?: string | undefined;
  support_email?: string | undefined;
  default_language?: string | undefined;
  colours?: Partial<BrandColours> | undefined;
  invite_subject?: LocalisedText | undefined;
  invite_subject_space?: LocalisedText | undefined;
}

export interface Brand {
  name: string;
  display_name: string;
  logo_url: string;
  operator_url: string;
  support_email: string;
  default_language: string;
  colours: BrandColours;
  invite_subject?: LocalisedText | undefined;
  invite_subject_space?: LocalisedText | undefined;
}

export const DEFAULT_COLOURS: BrandColours = {
  primary: "#0b7a5c",
  on_primary: "#ffffff",
  text: "#17191c",
  muted: "#5c6470",
  background: "#f4f5f7",
  surface: "#ffffff",
  error: "#b3261e",
};

/** The brands Seraph ships (sydent ships the same two). Configuration overrides them key by key. */
export const BUILTIN_BRANDS: Record<string, BrandInput> = {
  "matrix-org": {
    display_name: "matrix.org",
    operator_url: "https://matrix.org/",
    default_language: "en",
  },
  "vector-im": {
    display_name: "Element",
    operator_url: "https://element.io/",
    default_language: "en",
    colours: { primary: "#007a62" },
  },
};

const BRAND_RE = /^[A-Za-z0-9_.-]+$/;
/** Folder names under `templates_dir` that are not brands. */
const RESERVED = new Set(["locales"]);

/** A plain folder name: `[A-Za-z0-9_.-]`, at most 100 characters, no `..`, not starting with a dot. */
export function isPlausibleBrandName(name: string | undefined): name is string {
  return (
    typeof name === "string" &&
    name.length > 0 &&
    name.length <= 100 &&
    BRAND_RE.test(name) &&
    !name.includes("..") &&
    !name.startsWith(".") &&
    !RESERVED.has(name)
  );
}

function dirExists(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

export interface PresentationOptions {
  templatesDir: string;
  defaultBrand: string;
  brands?: Record<string, BrandInput> | undefined;
}

/** The language and brand a message or page is shown in. */
export interface Look {
  brand: Brand;
  lang: string;
}

export class Presentation {
  readonly catalogues: Catalogues;
  readonly templatesDir: string;
  readonly defaultBrand: string;
  private readonly configured: Record<string, BrandInput>;
  private readonly brands = new Map<string, Brand>();

  constructor(opts: PresentationOptions) {
    this.templatesDir = path.resolve(opts.templatesDir);
    this.defaultBrand = opts.defaultBrand;
    this.configured = opts.brands ?? {};
    const dirs = [path.join(PACKAGE_TEMPLATES_DIR, "locales")];
    const own = path.join(this.templatesDir, "locales");
    if (own !== dirs[0]) dirs.push(own);
    this.catalogues = new Catalogues(dirs);
  }

  get languages(): string[] {
    return this.catalogues.languages;
  }

  /** The configured and built-in brands whose colours are hard to read (for a warning at start). */
  contrastWarnings(): Array<{ brand: string; pairs: string[] }> {
    const names = new Set([...Object.keys(BUILTIN_BRANDS), ...Object.keys(this.configured)]);
    return [...names].flatMap((brand) => {
      const pairs = lowContrast(this.brand(brand));
      return pairs.length && this.isBrand(brand) ? [{ brand, pairs }] : [];
    });
  }

  /** Whether `name` is a brand: configured, built in, or a folder directly under `templates_dir`. */
  isBrand(name: string | undefined): name is string {
    if (!isPlausibleBrandName(name)) return false;
    if (Object.hasOwn(this.configured, name) || Object.hasOwn(BUILTIN_BRANDS, name)) return true;
    const dir = path.resolve(this.templatesDir, name);
    return path.dirname(dir) === this.templatesDir && dirExists(dir);
  }

  /** The brand a request asked for when it is one, else the default brand. */
  brandName(requested: string | undefined): string {
    return this.isBrand(requested) ? requested : this.defaultBrand;
  }

  /** The settings of a brand (built-in, then configured, over the defaults). Unknown → the default brand. */
  brand(name: string | undefined): Brand {
    const key = this.brandName(name ?? undefined);
    let b = this.brands.get(key);
    if (!b) {
      const builtin = BUILTIN_BRANDS[key] ?? {};
      const conf = this.configured[key] ?? {};
      const pick = <K extends keyof BrandInput>(k: K) => conf[k] ?? builtin[k];
      const lang = this.catalogues.match(pick("default_language")) ?? FALLBACK_LANGUAGE;
      b = {
        name: key,
        display_name: pick("display_name") ?? key,
        logo_url: pick("logo_url") ?? "",
        operator_url: pick("operator_url") ?? "",
        support_email: pick("support_email") ?? "",
        default_language: lang,
        colours: { ...DEFAULT_COLOURS, ...(builtin.colours ?? {}), ...(conf.colours ?? {}) },
        invite_subject: pick("invite_subject"),
        invite_subject_space: pick("invite_subject_space"),
      };
      this.brands.set(key, b);
    }
    return b;
  }

  /**
   * The language of a new message: the request's `lang` field when it names a shipped language, else
   * the first shipped language of its `Accept-Language`, else the brand's `default_language`, else English.
   */
  chooseLanguage(
    requestLang: string | undefined,
    acceptLanguage: string | undefined,
    brand?: string,
  ): string {
    return (
      this.catalogues.match(requestLang) ??
      this.catalogues.fromAcceptLanguage(acceptLanguage) ??
      this.brand(brand).default_language
    );
  }

  /**
   * The language of a page: the browser's `Accept-Language` when it names a shipped language, else the
   * language stored with the session, else the brand's default.
   */
  pageLanguage(
    acceptLanguage: string | undefined,
    stored: string | null | undefined,
    brand?: string,
  ): string {
    return (
      this.catalogues.fromAcceptLanguage(acceptLanguage) ??
      this.catalogues.match(stored ?? undefined) ??
      this.brand(brand).default_language
    );
  }

  /** A message of the catalogues. */
  t(lang: string, key: string, params?: MessageParams): string {
    return this.catalogues.t(lang, key, params);
  }

  /** A brand's localised text (e.g. its invite subject) in `lang`, if it set one. */
  static localised(text: LocalisedText | undefined, lang: string): string | undefined {
    if (text === undefined) return undefined;
    if (typeof text === "string") return text;
    return text[lang] ?? text[lang.split("-")[0]!] ?? text[FALLBACK_LANGUAGE] ?? Object.values(text)[0];
  }

  /** The variables every template and page sees about its brand and language. */
  lookVars(look: Look): Record<string, string> {
    const b = look.brand;
    const vars: Record<string, string> = {
      lang: look.lang,
      dir: textDirection(look.lang),
      brand: b.name,
      brand_display_name: b.display_name,
      brand_logo_url: /^https:\/\/[^\s<>"']+$/i.test(b.logo_url) ? b.logo_url : "",
      brand_operator_url: /^https?:\/\/[^\s<>"']+$/i.test(b.operator_url) ? b.operator_url : "",
      brand_support_email: b.support_email,
      brand_invite_subject: Presentation.localised(b.invite_subject, look.lang) ?? "",
      brand_invite_subject_space: Presentation.localised(b.invite_subject_space, look.lang) ?? "",
    };
    for (const [k, v] of Object.entries(b.colours)) vars[`colour_${k}`] = v;
    return vars;
  }
}

/** WCAG 2 contrast ratio of two `#rrggbb` colours (1 to 21). */
export function contrastRatio(a: string, b: string): number {
  const lum = (hex: string) => {
    const [r, g, bl] = [1, 3, 5].map((i) => {
      const v = Number.parseInt(hex.slice(i, i + 2), 16) / 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    }) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [x, y] = [lum(a), lum(b)];
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
}

/** The colour pairs of the default templates that must read (text on background). */
export const COLOUR_PAIRS: ReadonlyArray<[keyof BrandColours, keyof BrandColours]> = [
  ["on_primary", "primary"],
  ["primary", "surface"],
  ["text", "surface"],
  ["muted", "surface"],
  ["error", "surface"],
];

/** Pairs of a brand's colours below WCAG AA's 4.5:1, e.g. `["on_primary on primary: 2.4:1"]`. */
export function lowContrast(brand: Brand): string[] {
  return COLOUR_PAIRS.flatMap(([fg, bg]) => {
    const r = contrastRatio(brand.colours[fg], brand.colours[bg]);
    return r < 4.5 ? [`${fg} on ${bg}: ${r.toFixed(2)}:1`] : [];
  });
}

/** `rtl` for the scripts written right to left, else `ltr`. */
export function textDirection(lang: string): "ltr" | "rtl" {
  const primary = lang.split("-")[0]!.toLowerCase();
  return ["ar", "he", "fa", "ur", "yi", "ps", "sd", "ckb", "dv"].includes(primary) ? "rtl" : "ltr";
}

/** sydent's `%(name)s` placeholders, filled from `vars` (missing → empty). */
export function printfNamed(format: string, vars: (name: string) => string): string {
  return format.replace(/%\(([A-Za-z0-9_.]+)\)s/g, (_m, name: string) => vars(name));
}
