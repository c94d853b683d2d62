/** What a run prints: the environment it ran in and Markdown tables of its rows. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";
import type { Args } from "./args.js";
import { type CpuShare, cpuProbeMs, fastestProbeMs } from "./measure.js";
import type { LatencyRow, LoadRow } from "./scenarios.js";
import { ROOT } from "./servers.js";

export function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "-";
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m) return m[1]!.trim();
  } catch {
    // Not Linux: fall through.
  }
  return cpus()[0]?.model ?? "unknown";
}

function commit(): string {
  try {
    const rev = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], {
      cwd: ROOT,
      encoding: "utf8",
    }).trim();
    return dirty ? `${rev} (modified)` : rev;
  } catch {
    return "unknown";
  }
}

/** The machine and software a run measured: printed above its tables. */
export function environment(): string {
  const probe = cpuProbeMs();
  return [
    `commit ${commit()}; Node ${process.version}; ${cpuModel()}, ${cpus().length} cores, ` +
      `${availableParallelism()} for this process (os.availableParallelism), ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `CPU probe at start (sha256 of 5000 × 4 KiB and 40 JSON round trips of a 1000-hash body, best of 3): ` +
      `${probe.toFixed(1)} ms`,
  ].join("\n");
}

const LOAD_COLUMNS = [
  "scenario",
  "backend",
  "instances",
  "workers",
  "associations",
  "connections",
  "req/s",
  "of bare",
  "p50 ms",
  "p99 ms",
  "max ms",
  "errors",
  "non-2xx",
  "requests",
  "ramp s",
  "server read() calls/req",
  "server CPU",
  "PostgreSQL CPU",
  "CPU µs/req",
  "bare's CPU/req of it",
  "autocannon CPU",
  "other CPU",
  "server RSS MB (sum / largest / file-backed)",
  "CPU probe ms",
];

const LATENCY_COLUMNS = [
  "scenario",
  "backend",
  "associations",
  "hashes/request",
  "samples",
  "mean ms",
  "p50 ms",
  "min ms",
  "max ms",
  "server CPU",
  "PostgreSQL CPU",
  "other CPU",
  "CPU probe ms",
];

/** Markdown tables of the rows; load rows get their ratio to the `bare` row when there is one. */
export function tables(args: Args, loadRows: LoadRow[], latencyRows: LatencyRow[]): string[] {
  // Rows measured while other processes used more than --max-other cores are marked.
  const mark = (c: CpuShare) => (c.other > args.maxOther ? " ⚠" : "");
  const slow = (probeMs: number) => (probeMs > fastestProbeMs() * (1 + args.maxSlowdown) ? " ⚠" : "");
  const bare = loadRows.find((r) => r.scenario === "bare");
  const perRequest = (r: LoadRow) =>
    ((r.cpu.server + (Number.isFinite(r.cpu.db) ? r.cpu.db : 0)) / r.rps) * 1e6;
  const out: string[] = [];
  if (loadRows.length) {
    out.push(`| ${LOAD_COLUMNS.join(" | ")} |`, `|${LOAD_COLUMNS.map(() => "---").join("|")}|`);
    for (const r of loadRows) {
      const cpuPerRequest = perRequest(r);
      const cells = [
        r.scenario,
        r.backend,
        r.instances,
        r.workers,
        r.scenario === "bare" ? "-" : r.associations,
        r.connections,
        fmt(r.rps),
        bare ? `${fmt((100 * r.rps) / bare.rps)} %` : "-",
        fmt(r.p50, 1),
        fmt(r.p99, 1),
        fmt(r.max, 1),
        r.errors,
        r.non2xx,
        r.total,
        fmt(r.ramp, 1),
        fmt(r.readsPerRequest, 1),
        fmt(r.cpu.server, 2),
        fmt(r.cpu.db, 2),
        fmt(cpuPerRequest),
        bare ? `${fmt((100 * perRequest(bare)) / cpuPerRequest)} %` : "-",
        fmt(r.cpu.client, 2),
        fmt(r.cpu.other, 2) + mark(r.cpu),
        `${fmt(r.rss)} / ${fmt(r.rssMax)} / ${fmt(r.rssFile)}`,
        fmt(r.probeMs, 1) + slow(r.probeMs),
      ];
      out.push(`| ${cells.join(" | ")} |`);
    }
  }
  if (latencyRows.length) {
    if (out.length) out.push("");
    out.push(`| ${LATENCY_COLUMNS.join(" | ")} |`, `|${LATENCY_COLUMNS.map(() => "---").join("|")}|`);
    for (const r of latencyRows) {
      const cells = [
        r.scenario,
        r.backend,
        r.associations,
        r.hashes,
        r.samples,
        fmt(r.mean, 1),
        fmt(r.p50, 1),
        fmt(r.min, 1),
        fmt(r.max, 1),
        fmt(r.cpu.server, 2),
        fmt(r.cpu.db, 2),
        fmt(r.cpu.other, 2) + mark(r.cpu),
        fmt(r.probeMs, 1) + slow(r.probeMs),
      ];
      out.push(`| ${cells.join(" | ")} |`);
    }
  }
  return out;
}
