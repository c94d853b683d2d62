/**
 * A server keeps V8's young generation small. Loading the modules and building the app allocates some 30 MB
 * that all survives, and V8 answers survival by doubling its new space up to the maximum (two 16 MB
 * semi-spaces, about 24 MB resident) — space an idle process then keeps for good. While `seraph serve` starts,
 * the new space is not grown (`--semi-space-growth-factor=1`, a V8 flag read at every growth decision). Once it
 * listens, the new space may grow again, but only to two semi-spaces of 8 MB (`NEW_SPACE_CAP`): after every
 * collection the growth factor is set to 2 while a doubling stays within the cap and to 1 once it would not
 * (V8 grows the new space only after as many bytes survived as it holds, so it cannot grow twice before the
 * next check). Under load that keeps 16 MB fewer resident, for as many collections of half the size (the same
 * rates at a million associations on PostgreSQL, RSS p50 205 → 174 MB: bench/README.md, fourteenth session).
 *
 * A server also makes no object straight in the old generation (`--no-allocation-site-pretenuring`). V8
 * decides per allocation site whether what is made there is made in the old generation, by how much of it
 * survives young collections. On PostgreSQL it decided so for places in pg's or Kysely's per-query code (V8's
 * trace does not name them), and from then on what those objects hold (every token check's and v1 lookup's
 * rows) went to the old generation and waited for a full collection: 65 MB in 15 s of v1 lookups and token
 * checks at 100,000 associations, against 0.4 MB without it, and less GC time (bench/README.md, thirteenth
 * session). What a server keeps for long (the lookup index) is typed arrays, which this does not concern.
 *
 * Imported first by src/main.ts, which loads everything else only after it (src/cli/main.ts). Not for other
 * commands (an import of millions of rows wants its young generation), and each setting not when the operator
 * gave node a flag of its own (any semi-space flag leaves the new space to V8 and the operator).
 */
import { PerformanceObserver } from "node:perf_hooks";
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";

const V8_DEFAULT_GROWTH = 2;
/** The most the new space (both semi-spaces) grows to after start-up, in bytes. */
export const NEW_SPACE_CAP = 16 * 1024 * 1024;

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
const operatorSizes = operatorSet(/semi[-_]space/);
let held = serve && !operatorSet(/semi[-_]space[-_]growth[-_]factor/);
if (held) setFlagsFromString("--semi-space-growth-factor=1");
if (serve && !operatorSet(/allocation[-_]site[-_]pretenuring/)) {
  setFlagsFromString("--no-allocation-site-pretenuring");
}
/** The growth factor last set (V8's default until start-up holds it). */
let factor = held ? 1 : V8_DEFAULT_GROWTH;

/** Start-up is over (the server listens): the new space grows again, up to NEW_SPACE_CAP. */
export function startupDone(): void {
  if (!held) return;
  held = false;
  if (operatorSizes) {
    setGrowth(V8_DEFAULT_GROWTH);
    return;
  }
  capNewSpace();
  new PerformanceObserver(capNewSpace).observe({ entryTypes: ["gc"] });
}

/** Lets the new space double only while the doubled size stays within NEW_SPACE_CAP. */
function capNewSpace(): void {
  const size = getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.space_size ?? 0;
  setGrowth(size * 2 <= NEW_SPACE_CAP ? V8_DEFAULT_GROWTH : 1);
}

function setGrowth(to: number): void {
  if (to === factor) return;
  factor = to;
  setFlagsFromString(`--semi-space-growth-factor=${to}`);
}
