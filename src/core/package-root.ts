import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The nearest folder at or above `from` that holds a `package.json` and `templates/`: Seraph's package,
 * whatever the depth of the module asking (src/ under tsx, dist/ bundled into a few files).
 *
 *   findPackageRoot("/opt/seraph/node_modules/seraph/dist"); // "/opt/seraph/node_modules/seraph"
 */
export function findPackageRoot(from: string): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "templates"))) return dir;
    if (dirname(dir) === dir) return resolve(from, "..");
  }
}

/** Root of the installed package (where `package.json` and `templates/` live). */
export const PACKAGE_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

/** The version in the package's package.json, or `unknown` if it cannot be read. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}
