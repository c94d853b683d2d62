import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, expect, it } from "vitest";
import { findPackageRoot, PACKAGE_ROOT, packageVersion } from "./package-root.js";

const dir = mkdtempSync(join(tmpdir(), "seraph-root-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("finds the package from any depth below it (src/ under tsx, bundled dist/chunks/)", () => {
  expect(PACKAGE_ROOT).toBe(resolve(import.meta.dirname, "..", ".."));
  const pkg = join(dir, "node_modules", "seraph");
  mkdirSync(join(pkg, "dist", "chunks"), { recursive: true });
  mkdirSync(join(pkg, "templates"));
  writeFileSync(join(pkg, "package.json"), "{}");
  expect(findPackageRoot(join(pkg, "dist"))).toBe(pkg);
  expect(findPackageRoot(join(pkg, "dist", "chunks"))).toBe(pkg);
  // A package.json without templates/ on the way up (another package) is not it.
  mkdirSync(join(pkg, "dist", "other", "lib"), { recursive: true });
  writeFileSync(join(pkg, "dist", "other", "package.json"), "{}");
  expect(findPackageRoot(join(pkg, "dist", "other", "lib"))).toBe(pkg);
  // Without templates/ anywhere above, the nearest package.json.
  const bare = join(dir, "bare");
  mkdirSync(join(bare, "dist", "chunks"), { recursive: true });
  writeFileSync(join(bare, "package.json"), "{}");
  expect(findPackageRoot(join(bare, "dist", "chunks"))).toBe(bare);
});

it("reads the version from package.json", () => {
  expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
});
