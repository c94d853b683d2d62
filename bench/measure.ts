/**
 * What the benchmark reads from the machine: CPU and memory of process trees (/proc, Linux), a CPU
 * speed probe, quiet-machine waits and the repeat-while-disturbed policy.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import type { Args } from "./args.js";

export function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after "pid (comm) ".
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** A process and all its descendants (e.g. the postmaster and its backends, or cluster workers). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync("/proc").filter((e) => /^\d+$/.test(e));
  } catch {
    return [root];
  }
  for (const e of entries) {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e));
      children.set(ppid, list);
    } catch {
      // The process exited meanwhile.
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** CPU seconds used so far by the process trees of `roots` (children that exited are not counted). */
export function treeCpu(roots: ReadonlyArray<number | undefined>): Map<number, number> {
  const m = new Map<number, number>();
  for (const root of roots) {
    if (root === undefined) continue;
    for (const pid of processTree(root)) m.set(pid, processCpuSeconds(pid));
  }
  return m;
}

/** CPU seconds between two `treeCpu` snapshots, over the processes alive in both. */
export function treeDelta(before: Map<number, number>, after: Map<number, number>): number {
  if (before.size === 0) return Number.NaN;
  let sum = 0;
  for (const [pid, t] of after) {
    const t0 = before.get(pid);
    if (t0 !== undefined && Number.isFinite(t) && Number.isFinite(t0)) sum += t - t0;
  }
  return sum;
}

/** read() system calls of a process so far (/proc/PID/io), sockets and files alike. */
function readCalls(pid: number): number {
  try {
    return Number(/syscr:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1]);
  } catch {
    return Number.NaN;
  }
}

/** read() system calls per process of the trees of `roots`. */
export function treeReads(roots: readonly number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const root of roots) for (const pid of processTree(root)) m.set(pid, readCalls(pid));
  return m;
}

export function rssMb(pid: number, field: "VmRSS" | "RssFile" = "VmRSS"): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * Resident memory of every process in the trees of `roots`: the sum, the largest process, and the
 * file-backed part of the sum (RssFile: mapped files, mostly SQLite's memory-mapped database, which
 * is page cache the kernel can reclaim, shared between the workers).
 */
export function treeRss(roots: readonly number[]): {
  total: number;
  max: number;
  file: number;
  processes: number;
} {
  let total = 0;
  let max = 0;
  let file = 0;
  let processes = 0;
  for (const root of roots) {
    for (const pid of processTree(root)) {
      const mb = rssMb(pid);
      if (!Number.isFinite(mb)) continue;
      total += mb;
      max = Math.max(max, mb);
      file += rssMb(pid, "RssFile") || 0;
      processes++;
    }
  }
  return { total, max, file, processes };
}

/** Busy CPU seconds of the whole machine so far (every process, all cores), from /proc/stat. */
function machineCpuSeconds(): number {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
    const t = line.trim().split(/\s+/).slice(1, 9).map(Number);
    // user nice system idle iowait irq softirq steal
    return (t[0]! + t[1]! + t[2]! + t[5]! + t[6]! + t[7]!) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * Waits (up to `maxMs`) until the machine is nearly idle, so that other work on a shared machine does
 * not eat into a run. Returns the busy cores measured in the last second.
 */
export async function waitForQuiet(maxMs: number, threshold: number): Promise<number> {
  const until = Date.now() + maxMs;
  for (;;) {
    const c0 = machineCpuSeconds();
    await sleep(1000);
    const busy = machineCpuSeconds() - c0;
    if (!(busy > threshold) || Date.now() >= until) return busy;
    log(`  machine busy (${busy.toFixed(2)} cores used by other processes); waiting...`);
  }
}

/**
 * A fixed piece of CPU work (sha256 and JSON, like a lookup), best of 3, in ms. This VM's speed per
 * core drifts by up to a third over minutes (host contention that /proc/stat does not show), so
 * every row carries the probe taken just before it: compare rows by it.
 */
export function cpuProbeMs(): number {
  const block = Buffer.alloc(4096, 7);
  const json = JSON.stringify({ addresses: Array.from({ length: 1000 }, (_, i) => `hash-${i}-`.repeat(4)) });
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    for (let i = 0; i < 5000; i++) createHash("sha256").update(block).digest("base64url");
    for (let i = 0; i < 40; i++) JSON.stringify(JSON.parse(json));
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Cores used, on average, over a measured window. */
export interface CpuShare {
  /** The server processes together (every cluster worker included). */
  server: number;
  /** The embedded PostgreSQL (NaN for SQLite, which runs inside the server). */
  db: number;
  /** This process: autocannon or the sequential client. */
  client: number;
  /** Everything else on the machine (other people's work on a shared machine). */
  other: number;
}

/** Starts measuring; the returned function gives the cores used since. */
export function startCpuMeter(
  serverPids: readonly number[],
  postmasterPid: number | undefined,
): () => CpuShare {
  const server0 = treeCpu(serverPids);
  const db0 = treeCpu([postmasterPid]);
  const own0 = ownCpuSeconds();
  const all0 = machineCpuSeconds();
  const t0 = performance.now();
  return () => {
    const elapsed = (performance.now() - t0) / 1000;
    const all = machineCpuSeconds() - all0;
    const own = ownCpuSeconds() - own0;
    const db = treeDelta(db0, treeCpu([postmasterPid]));
    const server = treeDelta(server0, treeCpu(serverPids));
    return {
      server: server / elapsed,
      db: db / elapsed,
      client: own / elapsed,
      other: (all - server - own - (Number.isFinite(db) ? db : 0)) / elapsed,
    };
  };
}

export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** The fastest CPU probe seen in this process: the machine's speed when nothing slows it. */
let fastestProbe = Number.POSITIVE_INFINITY;

export function fastestProbeMs(): number {
  return fastestProbe;
}

/**
 * Runs a measurement up to --attempts times while it is disturbed: other processes used more than
 * --max-other cores, or the CPU probe before it was more than --max-slowdown slower than the fastest
 * probe seen so far. Keeps the least disturbed run (fewest other cores, then fastest probe).
 */
export async function attempts<T extends { cpu: CpuShare; probeMs: number }>(
  args: Args,
  run: () => Promise<T>,
): Promise<T> {
  fastestProbe = Math.min(fastestProbe, cpuProbeMs());
  const disturbed = (r: T) =>
    r.cpu.other > args.maxOther || r.probeMs > fastestProbe * (1 + args.maxSlowdown);
  let best: T | undefined;
  for (let i = 1; i <= args.attempts; i++) {
    const r = await run();
    fastestProbe = Math.min(fastestProbe, r.probeMs);
    if (
      !best ||
      (disturbed(best) && !disturbed(r)) ||
      (disturbed(best) === disturbed(r) && r.probeMs < best.probeMs)
    ) {
      best = r;
    }
    if (!disturbed(r)) break;
    if (i < args.attempts) {
      log(
        `  disturbed run (other processes ${r.cpu.other.toFixed(2)} cores, CPU probe ${r.probeMs.toFixed(1)} ms ` +
          `vs ${fastestProbe.toFixed(1)} ms at best); measuring again`,
      );
      await sleep(5000);
    }
  }
  return best!;
}
