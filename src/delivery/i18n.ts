/**
 * Message catalogues: one JSON file per language, `<dir>/locales/<lang>.json`, read from the package's
 * `templates/locales/` and then from the operator's `<templates_dir>/locales/` (whose files add languages
 * or override single messages). A message is a string with `{name}` placeholders, or an object of
 * plural forms (`one`, `other`, and `zero`/`two`/`few`/`many` where the language has them) chosen by
 * `Intl.PluralRules` from the `count` parameter. A missing message falls back to the language without
 * its region (`pt-BR` → `pt`), then to English, then to the key itself.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

export type Message = string | Partial<Record<Intl.LDMLPluralRule, string>>;
export type Catalogue = Record<string, Message>;
export type MessageParams = Record<string, string | number>;

export const FALLBACK_LANGUAGE = "en";

/** A language tag as written in file names and the `lang` request field: `fr`, `pt-BR`, `zh-Hant`. */
const LANG_TAG = /^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,3}$/;

export function isLanguageTag(s: string): boolean {
  return LANG_TAG.test(s);
}

/** Canonical casing: `pt-br` → `pt-BR`, `zh-hant` → `zh-Hant` (as `Intl` writes them). */
export function canonicalTag(tag: string): string {
  try {
    return Intl.getCanonicalLocales(tag)[0] ?? tag;
  } catch {
    return tag;
  }
}

function isMessage(v: unknown): v is Message {
  if (typeof v === "string") return true;
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const forms = Object.entries(v);
  return (
    forms.length > 0 &&
    forms.every(
      ([k, s]) => ["zero", "one", "two", "few", "many", "other"].includes(k) && typeof s === "string",
    )
  );
}

/** Reads `<dir>/*.json`; a file that is not a JSON object of messages is an error naming the file. */
function readCatalogues(dir: string): Map<string, Catalogue> {
  const out = new Map<string, Catalogue>();
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".json"));
  } catch {
    return out;
  }
  for (const file of files.sort()) {
    const tag = file.slice(0, -".json".length);
    if (!isLanguageTag(tag)) throw new Error(`${path.join(dir, file)}: not a language tag (e.g. fr, pt-BR)`);
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(path.join(dir, file), "utf8"));
    } catch (err) {
      throw new Error(`${path.join(dir, file)}: ${(err as Error).message}`);
    }
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      throw new Error(`${path.join(dir, file)}: expected a JSON object of messages`);
    }
    const cat: Catalogue = {};
    for (const [k, v] of Object.entries(data)) {
      if (k.startsWith("//")) continue; // comments
      if (!isMessage(v)) {
        throw new Error(`${path.join(dir, file)}: "${k}" must be a string or an object of plural forms`);
      }
      cat[k] = v;
    }
    out.set(canonicalTag(tag), cat);
  }
  return out;
}

function interpolate(text: string, params: MessageParams): string {
  return text.replace(/\{([A-Za-z0-9_]+)\}/g, (whole, name: string) =>
    Object.hasOwn(params, name) ? String(params[name]) : whole,
  );
}

/** Parses an `Accept-Language` header into tags, best first (q=0 dropped, at most 20 entries). */
export function parseAcceptLanguage(header: string | undefined): string[] {
  if (!header) return [];
  const entries: Array<{ tag: string; q: number; i: number }> = [];
  for (const [i, part] of header.slice(0, 1000).split(",").slice(0, 20).entries()) {
    const [rawTag, ...params] = part.trim().split(";");
    const tag = rawTag?.trim() ?? "";
    if (tag !== "*" && !isLanguageTag(tag)) continue;
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$/.exec(p);
      if (m) q = Number(m[1]);
    }
    if (q > 0) entries.push({ tag, q, i });
  }
  return entries.sort((a, b) => b.q - a.q || a.i - b.i).map((e) => e.tag);
}

export class Catalogues {
  private readonly catalogues: Map<string, Catalogue>;
  private readonly plurals = new Map<string, Intl.PluralRules>();

  /** `dirs`: locale folders, later ones override earlier ones message by message. */
  constructor(dirs: readonly string[]) {
    this.catalogues = new Map();
    for (const dir of dirs) {
      for (const [tag, cat] of readCatalogues(dir)) {
        this.catalogues.set(tag, { ...(this.catalogues.get(tag) ?? {}), ...cat });
      }
    }
  }

  /** The shipped languages (one per catalogue file), English first. */
  get languages(): string[] {
    return [...this.catalogues.keys()].sort((a, b) =>
      a === FALLBACK_LANGUAGE ? -1 : b === FALLBACK_LANGUAGE ? 1 : a.localeCompare(b),
    );
  }

  /**
   * The shipped language that `tag` names: an exact match (case-insensitive), else its primary
   * language (`fr-CA` → `fr`), else a shipped regional variant of it (`pt` → `pt-BR`); undefined if none.
   */
  match(tag: string | undefined): string | undefined {
    if (!tag || !isLanguageTag(tag)) return undefined;
    const want = tag.toLowerCase();
    const langs = this.languages;
    const exact = langs.find((l) => l.toLowerCase() === want);
    if (exact) return exact;
    const primary = want.split("-")[0]!;
    return (
      langs.find((l) => l.toLowerCase() === primary) ??
      langs.find((l) => l.toLowerCase().startsWith(`${primary}-`))
    );
  }

  /** The first shipped language of an `Accept-Language` header, if any. */
  fromAcceptLanguage(header: string | undefined): string | undefined {
    for (const tag of parseAcceptLanguage(header)) {
      if (tag === "*") return undefined;
      const m = this.match(tag);
      if (m) return m;
    }
    return undefined;
  }

  private lookup(lang: string, key: string): Message | undefined {
    const chain = [lang, lang.split("-")[0]!, FALLBACK_LANGUAGE];
    for (const l of chain) {
      const m = this.catalogues.get(l)?.[key];
      if (m !== undefined) return m;
    }
    return undefined;
  }

  /** Whether `key` has a message (in `lang` or a fallback). */
  has(lang: string, key: string): boolean {
    return this.lookup(lang, key) !== undefined;
  }

  private pluralRules(lang: string): Intl.PluralRules {
    let r = this.plurals.get(lang);
    if (!r) {
      try {
        r = new Intl.PluralRules(lang);
      } catch {
        r = new Intl.PluralRules(FALLBACK_LANGUAGE);
      }
      this.plurals.set(lang, r);
    }
    return r;
  }

  /** The message `key` in `lang` with `{name}` placeholders filled; plural forms follow `params.count`. */
  t(lang: string, key: string, params: MessageParams = {}): string {
    const m = this.lookup(lang, key);
    if (m === undefined) return key;
    let text: string | undefined;
    if (typeof m === "string") text = m;
    else {
      const count = Number(params.count ?? 0);
      text = m[this.pluralRules(lang).select(count)] ?? m.other ?? Object.values(m)[0];
    }
    return interpolate(text ?? key, params);
  }

  /** Every key of a language's own catalogue (tests compare languages with this). */
  keys(lang: string): string[] {
    return Object.keys(this.catalogues.get(lang) ?? {});
  }

  /** A language's own message (no fallback), for tests. */
  raw(lang: string, key: string): Message | undefined {
    return this.catalogues.get(lang)?.[key];
  }
}
