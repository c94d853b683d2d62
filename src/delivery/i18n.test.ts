import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PACKAGE_TEMPLATES_DIR } from "../core/package-root.js";
import { Presentation } from "./brands.js";
import { Catalogues, parseAcceptLanguage } from "./i18n.js";

const shipped = new Catalogues([join(PACKAGE_TEMPLATES_DIR, "locales")]);
const placeholders = (text: string) => [...text.matchAll(/\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]).sort();

describe("the shipped catalogues", () => {
  it("ship English, French, German and Spanish", () => {
    expect(shipped.languages).toEqual(["en", "de", "es", "fr"]);
  });

  for (const lang of ["fr", "de", "es"]) {
    it(`${lang}: has every English message, with the same placeholders, and no English left over`, () => {
      const en = shipped.keys("en").filter((k) => !k.startsWith("//"));
      expect(shipped.keys(lang).sort()).toEqual(en.sort());
      for (const key of en) {
        const mine = shipped.raw(lang, key)!;
        const theirs = shipped.raw("en", key)!;
        const forms = (m: typeof mine) => (typeof m === "string" ? [m] : Object.values(m));
        for (const text of forms(mine)) {
          expect(placeholders(text), `${lang} ${key}`).toEqual(placeholders(forms(theirs)[0]!));
        }
        if (key !== "common.quoted" && key !== "sms.body" && !key.endsWith(".button") && key.length > 0) {
          expect(forms(mine)[0], `${lang} ${key} is still English`).not.toBe(forms(theirs)[0]);
        }
      }
    });

    it(`${lang}: gives every plural category of the language a form`, () => {
      const categories = new Intl.PluralRules(lang).resolvedOptions().pluralCategories;
      for (const key of shipped.keys(lang)) {
        const m = shipped.raw(lang, key)!;
        if (typeof m === "string") continue;
        for (const c of categories) expect(m[c] ?? m.other, `${lang} ${key} ${c}`).toBeTruthy();
      }
    });
  }

  it("chooses plural forms by the language's rules", () => {
    expect(shipped.t("en", "verification.lifetime", { count: 1 })).toBe(
      "The link and the code are valid for 1 hour.",
    );
    expect(shipped.t("en", "verification.lifetime", { count: 24 })).toContain("24 hours");
    // French counts 0 as singular, English does not.
    expect(shipped.t("fr", "verification.lifetime", { count: 0 })).toContain("0 heure.");
    expect(shipped.t("en", "verification.lifetime", { count: 0 })).toContain("0 hours");
    expect(shipped.t("de", "page.locked.message", { count: 5 })).toContain("5 falschen Versuchen");
    expect(shipped.t("es", "page.locked.message", { count: 1 })).toContain("1 intento fallido");
  });

  it("words rooms and spaces apart", () => {
    expect(shipped.t("fr", "invite.intro_named", { inviter: "A", room: "R" })).toContain("salon");
    expect(shipped.t("fr", "invite.intro_named_space", { inviter: "A", room: "R" })).toContain("espace");
    expect(shipped.t("de", "invite.button_space")).toContain("Space");
    expect(shipped.t("es", "invite.subject_space", { inviter: "A" })).toContain("espacio");
  });
});

describe("language negotiation", () => {
  it("parses Accept-Language by quality, then order", () => {
    expect(parseAcceptLanguage("de;q=0.5, fr-CA, en;q=0.8, *;q=0.1")).toEqual(["fr-CA", "en", "de", "*"]);
    expect(parseAcceptLanguage("xx;q=0, es")).toEqual(["es"]);
    expect(parseAcceptLanguage("<script>, 1234")).toEqual([]);
    expect(parseAcceptLanguage(undefined)).toEqual([]);
  });

  it("matches a region to its language and skips what is not shipped", () => {
    expect(shipped.match("fr-CA")).toBe("fr");
    expect(shipped.match("DE")).toBe("de");
    expect(shipped.match("pt")).toBeUndefined();
    expect(shipped.fromAcceptLanguage("pt-BR, es;q=0.5")).toBe("es");
    expect(shipped.fromAcceptLanguage("pt-BR")).toBeUndefined();
  });

  it("prefers the lang field, then Accept-Language, then the brand's default, then English", () => {
    const p = new Presentation({
      templatesDir: PACKAGE_TEMPLATES_DIR,
      defaultBrand: "matrix-org",
      brands: { "vector-im": { default_language: "es" } },
    });
    expect(p.chooseLanguage("de", "fr", "vector-im")).toBe("de");
    expect(p.chooseLanguage("klingon-x", "fr", "vector-im")).toBe("fr");
    expect(p.chooseLanguage(undefined, "pt", "vector-im")).toBe("es");
    expect(p.chooseLanguage(undefined, undefined, "matrix-org")).toBe("en");
    // A page: the browser's language when shipped, else the stored one.
    expect(p.pageLanguage("de-AT", "fr")).toBe("de");
    expect(p.pageLanguage("pt", "fr")).toBe("fr");
  });
});

describe("an operator's catalogues", () => {
  it("add a language with one file and override single messages", () => {
    const dir = mkdtempSync(join(tmpdir(), "seraph-locales-"));
    cpSync(join(PACKAGE_TEMPLATES_DIR, "matrix-org"), join(dir, "matrix-org"), { recursive: true });
    mkdirSync(join(dir, "locales"));
    writeFileSync(
      join(dir, "locales", "it.json"),
      JSON.stringify({ language_name: "Italiano", "page.success.title_email": "Indirizzo email verificato" }),
    );
    writeFileSync(join(dir, "locales", "fr.json"), JSON.stringify({ "page.expired.title": "Trop tard" }));
    const p = new Presentation({ templatesDir: dir, defaultBrand: "matrix-org" });
    expect(p.languages).toContain("it");
    expect(p.chooseLanguage(undefined, "it-IT,en;q=0.5")).toBe("it");
    expect(p.t("it", "page.success.title_email")).toBe("Indirizzo email verificato");
    // Messages the new file lacks come from English.
    expect(p.t("it", "page.expired.title")).toBe("Link expired");
    expect(p.t("fr", "page.expired.title")).toBe("Trop tard");
    expect(p.t("fr", "page.expired.message")).toContain("a expiré");
  });

  it("refuses a catalogue that is not an object of messages, naming the file", () => {
    const dir = mkdtempSync(join(tmpdir(), "seraph-locales-"));
    mkdirSync(join(dir, "locales"));
    writeFileSync(join(dir, "locales", "nl.json"), JSON.stringify({ "page.expired.title": 3 }));
    expect(() => new Presentation({ templatesDir: dir, defaultBrand: "matrix-org" })).toThrow(/nl\.json/);
  });
});
