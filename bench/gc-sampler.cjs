// What a server's garbage collector does in a window of a benchmark run, and what reaches V8's old
// generation. Preloaded into the servers, it waits $BENCH_GC_DELAY seconds (default 30: past the seeding
// and the bare ceiling), then for $BENCH_GC_WINDOW seconds (default 15) records every collection
// (v8.GCProfiler) and samples allocations, keeping only those that survive young-generation collections
// (the inspector's sampling heap profiler with includeObjectsCollectedByMinorGC false). It writes
// $BENCH_GC_DIR/gc-<pid>.json. Run as a script, it prints, per file: collections by kind, MB promoted by
// scavenges, GC time, and the allocation places of what was promoted or is still alive, largest first.
//
//   BENCH_GC_DIR=/tmp/gc BENCH_GC_DELAY=26 npm run bench -- --node-options=--require=$PWD/bench/gc-sampler.cjs …
//   node bench/gc-sampler.cjs /tmp/gc [places]
const fs = require("node:fs");
const path = require("node:path");

/** `name file:line` of a profile node, node_modules and dist/ shortened. */
function place(frame) {
  const url = (frame.url || "").replace(/.*node_modules\//, "nm:").replace(/.*\/(dist|src)\//, "$1/");
  return `${frame.functionName || "(anonymous)"} ${url}:${frame.lineNumber + 1}`;
}

if (require.main === module) {
  const dir = process.argv[2] ?? ".";
  const top = Number(process.argv[3] ?? 15);
  for (const file of fs.readdirSync(dir).filter((f) => /^gc-\d+\.json$/.test(f))) {
    const { gc, profile } = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8"));
    console.log(
      `${file}: ${gc.seconds} s; collections ${JSON.stringify(gc.kinds)}; promoted by scavenges ` +
        `${gc.promotedMB.toFixed(1)} MB; GC time ${gc.gcMs.toFixed(0)} ms; new space ${gc.newSpaceMB.toFixed(0)} MB`,
    );
    if (!profile) continue;
    const bytes = new Map();
    let total = 0;
    const walk = (node) => {
      if (node.selfSize > 0) {
        total += node.selfSize;
        const k = place(node.callFrame);
        bytes.set(k, (bytes.get(k) ?? 0) + node.selfSize);
      }
      for (const child of node.children) walk(child);
    };
    walk(profile.head);
    console.log(`  sampled, surviving young collections: ${(total / 1e6).toFixed(1)} MB; largest places:`);
    for (const [k, v] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`  ${(v / 1e6).toFixed(2).padStart(7)} MB  ${k}`);
    }
  }
} else if (process.env.BENCH_GC_DIR) {
  // Every process it is preloaded into writes its own file: under --workers, the primary and each worker.
  const v8 = require("node:v8");
  const inspector = require("node:inspector");
  const dir = process.env.BENCH_GC_DIR;
  const delay = Number(process.env.BENCH_GC_DELAY ?? 30) * 1000;
  const window = Number(process.env.BENCH_GC_WINDOW ?? 15) * 1000;
  fs.mkdirSync(dir, { recursive: true });
  const session = new inspector.Session();
  session.connect();
  const post = (method, params) =>
    new Promise((ok, fail) => session.post(method, params, (err, res) => (err ? fail(err) : ok(res))));
  setTimeout(async () => {
    const profiler = new v8.GCProfiler();
    await post("HeapProfiler.enable");
    await post("HeapProfiler.startSampling", {
      samplingInterval: 16384,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: false,
    });
    profiler.start();
    setTimeout(async () => {
      const { statistics } = profiler.stop();
      const { profile } = await post("HeapProfiler.getSamplingProfile");
      await post("HeapProfiler.stopSampling");
      const space = (stats, name) => stats.heapSpaceStatistics.find((s) => s.spaceName === name);
      const gc = { seconds: window / 1000, kinds: {}, promotedMB: 0, gcMs: 0, newSpaceMB: 0 };
      for (const e of statistics) {
        gc.kinds[e.gcType] = (gc.kinds[e.gcType] ?? 0) + 1;
        gc.gcMs += e.cost / 1000;
        if (e.gcType !== "Scavenge") continue;
        const old = (s) => space(s, "old_space").spaceUsedSize;
        gc.promotedMB += (old(e.afterGC) - old(e.beforeGC)) / 1e6;
        gc.newSpaceMB = space(e.beforeGC, "new_space").spaceSize / 1e6;
      }
      fs.writeFileSync(path.join(dir, `gc-${process.pid}.json`), JSON.stringify({ gc, profile }));
    }, window).unref();
  }, delay).unref();
}
