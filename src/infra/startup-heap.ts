/**
 * A server's start-up keeps V8's young generation small. Loading the modules and building the app allocates
 * some 30 MB that all survives, and V8 answers survival by doubling its new space up to the maximum (two 16 MB
 * semi-spaces, about 24 MB resident) — space an idle process then keeps for good. While `seraph serve` starts,
 * the new space is not grown (`--semi-space-growth-factor=1`, a V8 flag read at every growth decision); once
 * it listens, V8's default (2) is back, so under load the new space grows exactly as before.
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

const operatorSet = [...process.execArgv, process.env.NODE_OPTIONS ?? ""].some((a) =>
  /semi[-_]space[-_]growth[-_]factor/.test(a),
);
let held = !operatorSet && serving(process.argv.slice(2));
if (held) setFlagsFromString("--semi-space-growth-factor=1");

/** Start-up is over (the server listens): V8 grows its new space again as it likes. */
export function startupDone(): void {
  if (!held) return;
  held = false;
  setFlagsFromString(`--semi-space-growth-factor=${V8_DEFAULT_GROWTH}`);
}
