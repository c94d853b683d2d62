// Runs before `npm start`: compiles src/ to dist/ when dist/ is missing or older than any source file.
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
  process.stdout.write("building Seraph (tsc)...\n");
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], {
    stdio: "inherit",
  });
}
