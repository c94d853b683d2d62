import { describe, expect, it } from "vitest";
import { PACKAGE_TEMPLATES_DIR } from "../core/package-root.js";
import { BUILTIN_BRANDS, contrastRatio, lowContrast, Presentation } from "./brands.js";

describe("brands", () => {
  const p = new Presentation({
    templatesDir: PACKAGE_TEMPLATES_DIR,
    defaultBrand: "matrix-org",
    brands: { "vector-im": { support_email: "help@element.io" }, pale: { colours: { primary: "#0dbd8b" } } },
  });

  it("computes WCAG contrast", () => {
    expect(contrastRatio("#000000", "#ffffff")).toBeCloseTo(21, 5);
    expect(contrastRatio("#ffffff", "#ffffff")).toBe(1);
    expect(contrastRatio("#0dbd8b", "#ffffff")).toBeLessThan(4.5);
  });

  it("ships matrix-org and vector-im with colours that read (>= 4.5:1)", () => {
    expect(Object.keys(BUILTIN_BRANDS)).toEqual(["matrix-org", "vector-im"]);
    for (const name of Object.keys(BUILTIN_BRANDS)) expect(lowContrast(p.brand(name)), name).toEqual([]);
  });

  it("merges configuration over the built-in settings, key by key", () => {
    const v = p.brand("vector-im");
    expect(v.display_name).toBe("Element");
    expect(v.support_email).toBe("help@element.io");
    expect(v.colours.primary).toBe("#007a62");
    expect(v.colours.on_primary).toBe("#ffffff");
  });

  it("falls back to the default brand for unknown or hostile names", () => {
    for (const name of ["nope", "../etc", ".hidden", "locales", "", undefined]) {
      expect(p.brandName(name)).toBe("matrix-org");
    }
    expect(p.brandName("pale")).toBe("pale");
  });

  it("warns about a configured brand whose colours are hard to read", () => {
    expect(p.contrastWarnings()).toEqual([
      {
        brand: "pale",
        pairs: [
          expect.stringMatching(/^on_primary on primary/),
          expect.stringMatching(/^primary on surface/),
        ],
      },
    ]);
  });
});
