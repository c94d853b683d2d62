// Runs before `npm start`: builds dist/ from src/ (scripts/bundle.mjs) when dist/ is missing or older than any
// source file. No type check here (`npm run build` and `npm test` do it): a start should not wait for it.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return latest;
}

const target = "dist/main.js";
const stale =
  !existsSync(target) ||
  newest("src") > statSync(target).mtimeMs ||
  statSync("package.json").mtimeMs > statSync(target).mtimeMs;
if (stale) {
  process.stdout.write("building Seraph (esbuild)...\n");
  execFileSync(process.execPath, ["scripts/bundle.mjs"], { stdio: "inherit" });
}
