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

/** A load row and the round (1 to `--rounds`) it ran in. */
export type RoundRow = LoadRow & { round: number };

/** Server and database CPU per request, in µs. */
const perRequest = (r: LoadRow) =>
  ((r.cpu.server + (Number.isFinite(r.cpu.db) ? r.cpu.db : 0)) / r.rps) * 1e6;

function median(values: number[]): number {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const SUMMARY_COLUMNS = [
  "scenario",
  "rounds",
  "req/s median (min–max)",
  "of bare median (min–max)",
  "p50 ms",
  "p99 ms",
  "CPU µs/req median",
  "bare's CPU/req of it median (min–max)",
  "server RSS MB largest (max)",
];

/**
 * Every scenario's median over the rounds; the ratios are taken within each round (a row against its
 * own round's bare row) before the median, so that a machine whose speed drifts between rounds moves
 * both sides of each ratio.
 */
function summary(loadRows: RoundRow[]): string[] {
  const pct = (v: number) => `${fmt(v)} %`;
  const range = (vs: number[], f: (v: number) => string) =>
    `${f(median(vs))} (${f(Math.min(...vs))}–${f(Math.max(...vs))})`;
  const out = [`| ${SUMMARY_COLUMNS.join(" | ")} |`, `|${SUMMARY_COLUMNS.map(() => "---").join("|")}|`];
  const names = [...new Set(loadRows.map((r) => r.scenario))];
  for (const name of names) {
    const rows = loadRows.filter((r) => r.scenario === name);
    const ofBare: number[] = [];
    const cpuShare: number[] = [];
    for (const r of rows) {
      const b = loadRows.find((x) => x.scenario === "bare" && x.round === r.round);
      if (!b) continue;
      ofBare.push((100 * r.rps) / b.rps);
      cpuShare.push((100 * perRequest(b)) / perRequest(r));
    }
    const cells = [
      name,
      rows.length,
      range(
        rows.map((r) => r.rps),
        (v) => fmt(v),
      ),
      ofBare.length ? range(ofBare, pct) : "-",
      fmt(median(rows.map((r) => r.p50)), 1),
      fmt(median(rows.map((r) => r.p99)), 1),
      fmt(median(rows.map(perRequest))),
      cpuShare.length ? range(cpuShare, pct) : "-",
      fmt(Math.max(...rows.map((r) => r.rssMax))),
    ];
    out.push(`| ${cells.join(" | ")} |`);
  }
  return out;
}

/**
 * Markdown tables of the rows; load rows get their ratio to the `bare` row of their round when there is
 * one, and with more than one round a last table gives the medians.
 */
export function tables(args: Args, loadRows: RoundRow[], latencyRows: LatencyRow[]): string[] {
  // Rows measured while other processes used more than --max-other cores are marked.
  const mark = (c: CpuShare) => (c.other > args.maxOther ? " ⚠" : "");
  const slow = (probeMs: number) => (probeMs > fastestProbeMs() * (1 + args.maxSlowdown) ? " ⚠" : "");
  const out: string[] = [];
  const columns = args.rounds > 1 ? ["round", ...LOAD_COLUMNS] : LOAD_COLUMNS;
  if (loadRows.length) {
    out.push(`| ${columns.join(" | ")} |`, `|${columns.map(() => "---").join("|")}|`);
    for (const r of loadRows) {
      const bare = loadRows.find((x) => x.scenario === "bare" && x.round === r.round);
      const cpuPerRequest = perRequest(r);
      const cells = [
        ...(args.rounds > 1 ? [r.round] : []),
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
    if (args.rounds > 1) out.push("", ...summary(loadRows));
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
