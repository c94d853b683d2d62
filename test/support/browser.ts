import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { brotliDecompressSync } from "node:zlib";
import { type Browser, chromium } from "playwright-core";

const ROOT = resolve(import.meta.dirname, "..", "..");
/** Where the npm-shipped Chromium is unpacked (once), inside the project rather than the shared /tmp. */
const CACHE = join(ROOT, "node_modules", ".cache", "seraph-chromium");

const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/**
 * The Chromium to drive: `CHROMIUM_PATH`, else Debian's `/usr/bin/chromium`, else the build that the
 * `@sparticuz/chromium` npm package ships (unpacked into node_modules/.cache, with the libraries it brings).
 */
async function chromiumExecutable(): Promise<{ executablePath: string; env: Record<string, string> }> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined),
  );
  for (const candidate of [process.env.CHROMIUM_PATH, "/usr/bin/chromium"]) {
    if (candidate && existsSync(candidate)) return { executablePath: candidate, env };
  }
  mkdirSync(CACHE, { recursive: true });
  // The package unpacks into os.tmpdir(), which follows TMPDIR at call time.
  const savedTmp = process.env.TMPDIR;
  process.env.TMPDIR = CACHE;
  let executablePath: string;
  try {
    const { default: Sparticuz } = await import("@sparticuz/chromium");
    executablePath = await Sparticuz.executablePath();
  } finally {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  }
  // NSS, NSPR and expat, for machines that lack them (the package unpacks these only on AWS Lambda).
  const lib = join(CACHE, "al2023", "lib");
  if (!existsSync(join(lib, "libnss3.so"))) {
    const bin = join(
      dirname(createRequire(import.meta.url).resolve("@sparticuz/chromium")),
      "..",
      "..",
      "bin",
    );
    mkdirSync(join(CACHE, "al2023"), { recursive: true });
    execFileSync("tar", ["-x", "-C", join(CACHE, "al2023")], {
      input: brotliDecompressSync(readFileSync(join(bin, "al2023.tar.br"))),
    });
  }
  return { executablePath, env: { ...env, LD_LIBRARY_PATH: lib } };
}

/** Launches headless Chromium through playwright-core. */
export async function launchBrowser(): Promise<Browser> {
  const { executablePath, env } = await chromiumExecutable();
  return chromium.launch({ executablePath, env, headless: true, args: FLAGS });
}
