import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The nearest folder at or above `from` that holds a `package.json` and `templates/`: Seraph's package,
 * whatever the depth of the module asking (src/ under tsx, dist/ bundled into a few files). Without one
 * (a damaged install), the nearest folder with a `package.json`, else `from`: the templates and the
 * version are then missing, and say so where they are read.
 *
 *   findPackageRoot("/opt/seraph/node_modules/seraph/dist"); // "/opt/seraph/node_modules/seraph"
 */
export function findPackageRoot(from: string): string {
  let withPackageJson: string | undefined;
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const hasPackageJson = existsSync(join(dir, "package.json"));
    if (hasPackageJson && existsSync(join(dir, "templates"))) return dir;
    if (hasPackageJson) withPackageJson ??= dir;
    if (dirname(dir) === dir) return withPackageJson ?? resolve(from);
  }
}

/** Root of the installed package (where `package.json` and `templates/` live). */
export const PACKAGE_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

/** The package's own `templates/` folder (the default `email.templates_dir`; shipped catalogues in `locales/`). */
export const PACKAGE_TEMPLATES_DIR = join(PACKAGE_ROOT, "templates");

/** The version in the package's package.json, or `unknown` if it cannot be read. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}
