// Memory of a server over a whole benchmark run. Preloaded into the servers, it appends a line every 2 s to
// $BENCH_MEMORY_DIR/mem-<pid>.log: RSS, the process's peak RSS so far (VmHWM, Linux), V8's heap and
// ArrayBuffers, and the resident size of each V8 space. Run as a script, it summarises those files (RSS
// percentiles over the samples after the first 10 s, and the peak, start-up included).
//
//   BENCH_MEMORY_DIR=/tmp/mem npm run bench -- --node-options=--require=$PWD/bench/memory-sampler.cjs …
//   node bench/memory-sampler.cjs /tmp/mem
const fs = require("node:fs");
const path = require("node:path");
const MB = 1048576;

if (require.main === module) {
  const dir = process.argv[2] ?? ".";
  for (const file of fs.readdirSync(dir).filter((f) => /^mem-\d+\.log$/.test(f))) {
    const lines = fs.readFileSync(path.join(dir, file), "utf8").trim().split("\n");
    const samples = lines.map((l) => JSON.parse(l)).filter((s) => s.s >= 10);
    if (samples.length === 0) continue;
    const q = (key, p) => {
      const v = samples.map((s) => s[key]).sort((a, b) => a - b);
      return v[Math.min(v.length - 1, Math.floor(v.length * p))];
    };
    console.log(
      `${file}: ${samples.length} samples; RSS p50 ${q("rss", 0.5)} p90 ${q("rss", 0.9)} max ${q("rss", 1)} MiB; ` +
        `peak ${Math.max(...lines.map((l) => JSON.parse(l).hwm ?? 0))} MiB; ` +
        `ArrayBuffers p50 ${q("arrayBuffers", 0.5)}; old space p50 ${q("old", 0.5)} max ${q("old", 1)}; new space max ${q("new", 1)}`,
    );
  }
} else {
  const v8 = require("node:v8");
  const dir = process.env.BENCH_MEMORY_DIR;
  if (dir) {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `mem-${process.pid}.log`);
    const started = Date.now();
    const peak = () => {
      try {
        const kb = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
        return kb ? Math.round(Number(kb[1]) / 1024) : undefined;
      } catch {
        return undefined;
      }
    };
    setInterval(() => {
      const m = process.memoryUsage();
      const sample = {
        s: Math.round((Date.now() - started) / 1000),
        rss: Math.round(m.rss / MB),
        heapUsed: Math.round(m.heapUsed / MB),
        arrayBuffers: Math.round(m.arrayBuffers / MB),
        hwm: peak(),
      };
      for (const space of v8.getHeapSpaceStatistics()) {
        sample[space.space_name.replace(/_space$/, "")] = Math.round(space.physical_space_size / MB);
      }
      fs.appendFileSync(file, `${JSON.stringify(sample)}\n`);
    }, 2000).unref();
  }
}
