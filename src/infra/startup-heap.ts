/**
 * A server's start-up keeps V8's young generation small. Loading the modules and building the app allocates
 * some 30 MB that all survives, and V8 answers survival by doubling its new space up to the maximum (two 16 MB
 * semi-spaces, about 24 MB resident) — space an idle process then keeps for good. While `seraph serve` starts,
 * the new space is not grown (`--semi-space-growth-factor=1`, a V8 flag read at every growth decision); once
 * it listens, V8's default (2) is back, so under load the new space grows exactly as before.
 *
 * A server also makes no object straight in the old generation (`--no-allocation-site-pretenuring`). V8
 * decides per allocation site whether what is made there is made in the old generation, by how much of it
 * survives young collections. On PostgreSQL it decided so for places in pg's or Kysely's per-query code (V8's
 * trace does not name them), and from then on what those objects hold (every token check's and v1 lookup's
 * rows) went to the old generation and waited for a full collection: 65 MB in 15 s of v1 lookups and token
 * checks at 100,000 associations, against 0.4 MB without it, and less GC time (bench/README.md, thirteenth
 * session). What a server keeps for long (the lookup index) is typed arrays, which this does not concern.
 *
 * Imported first by src/main.ts, which loads everything else only after it (src/cli/main.ts). Not for other commands
 * (an import of millions of rows wants its young generation) and not when the operator set the flag.
 */
import { setFlagsFromString } from "node:v8";

const V8_DEFAULT_GROWTH = 2;

/** `serve` is the default command: no command word, or `serve` (skipping the options that take a value). */
function serving(argv: readonly string[]): boolean {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-c" || a === "--config" || a === "--workers") i++;
    else if (!a.startsWith("-")) return a === "serve";
  }
  return true;
}

/** Whether the operator gave node a V8 flag whose name matches `name` (any spelling of `-` and `_`). */
const operatorSet = (name: RegExp): boolean =>
  [...process.execArgv, process.env.NODE_OPTIONS ?? ""].some((a) => name.test(a));

const serve = serving(process.argv.slice(2));
let held = serve && !operatorSet(/semi[-_]space[-_]growth[-_]factor/);
if (held) setFlagsFromString("--semi-space-growth-factor=1");
if (serve && !operatorSet(/allocation[-_]site[-_]pretenuring/)) {
  setFlagsFromString("--no-allocation-site-pretenuring");
}

/** Start-up is over (the server listens): V8 grows its new space again as it likes. */
export function startupDone(): void {
  if (!held) return;
  held = false;
  setFlagsFromString(`--semi-space-growth-factor=${V8_DEFAULT_GROWTH}`);
}
