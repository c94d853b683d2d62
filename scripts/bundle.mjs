// Builds dist/ from src/ with esbuild: src/main.ts and what it imports, bundled and minified into
// dist/main.js and dist/chunks/ (one chunk per dynamic import: what a process never needs it never reads).
// Packages that load native code or are loaded by name at first use stay outside, required from
// node_modules at run time. Why bundle: a process keeps every module's source text in its heap; bundled
// and minified, an idle server holds about 5 MB less heap and 11 MB less RSS (bench/README.md).
//
//   node scripts/bundle.mjs            # what `npm run build` runs after the type check
import { rmSync } from "node:fs";
import { build } from "esbuild";

/**
 * Native code, optional native code, the packages `lazyModule` requires by name, and ioredis (it reads its
 * own package.json through `__dirname`, which a bundled ES module does not have).
 */
const EXTERNAL = [
  "better-sqlite3",
  "pg-native",
  "ioredis",
  "undici",
  "nodemailer",
  "nodemailer/*",
  "libphonenumber-js",
  "libphonenumber-js/*",
  "pino-pretty",
  "prom-client",
];

rmSync("dist", { recursive: true, force: true });
await build({
  entryPoints: ["src/main.ts"],
  outdir: "dist",
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: EXTERNAL,
  minifyWhitespace: true,
  minifySyntax: true,
  // Names are kept (stack traces name the functions of the source; positions are in the long lines of
  // dist/, mapped back by dist/**/*.map in a checkout): minifying them too saved 0.8 MB more.
  minifyIdentifiers: false,
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning",
  // Bundled CommonJS packages call `require`; ES modules have none of their own.
  banner: {
    js: 'import { createRequire as __seraphRequire } from "node:module"; const require = __seraphRequire(import.meta.url);',
  },
});
