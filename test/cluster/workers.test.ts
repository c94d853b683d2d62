/**
 * `seraph serve --workers N` with real processes: one listener served by N workers, exactly one of
 * them running the shared background tasks, a killed worker replaced (and the leadership moved), the
 * workers' metrics summed on the primary's metrics listener, and SIGTERM draining every worker.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SeraphProcess, spawnSeraph } from "../support/process.js";
import { freePort } from "../support/seraph.js";

const WORKERS = 2;
const REGISTER_LIMIT = 4;
let seraph: SeraphProcess;
let metricsUrl: string;

/**
 * Pids of the live worker processes of `parent` (from /proc): its children that run the same
 * executable. With a cold tsx cache the primary also has an esbuild service child; that is no worker.
 */
function children(parent: number): number[] {
  const out: number[] = [];
  const exe = readlinkSync(`/proc/${parent}/exe`);
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(ppid) !== parent || state === "Z") continue;
      if (readlinkSync(`/proc/${e}/exe`) === exe) out.push(Number(e));
    } catch {
      // Exited meanwhile.
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** The metrics text as `name{labels}` → value. */
async function metrics(): Promise<Map<string, number>> {
  const res = await fetch(metricsUrl);
  expect(res.status).toBe(200);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Pids whose `seraph_background_leader` is 1. */
function leaders(m: Map<string, number>): number[] {
  const out: number[] = [];
  for (const [k, v] of m) {
    const pid = /^seraph_background_leader\{pid="(\d+)"\}$/.exec(k)?.[1];
    if (pid && v === 1) out.push(Number(pid));
  }
  return out;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 90_000): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what} (${String(last ?? "")})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function status(): Promise<number> {
  const res = await fetch(`${seraph.url}/_matrix/identity/v2`, { headers: { connection: "close" } });
  await res.text();
  return res.status;
}

beforeAll(async () => {
  const metricsPort = await freePort();
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  seraph = await spawnSeraph({
    server: { workers: WORKERS },
    metrics: { enabled: true, host: "127.0.0.1", port: metricsPort },
    // Limits on: register's per-route limit is tested below; the other routes used here have none.
    rate_limit: { enabled: true, register_per_minute: REGISTER_LIMIT },
  });
}, 120_000);

afterAll(() => {
  if (seraph && seraph.child.exitCode === null) {
    for (const pid of children(seraph.child.pid!)) process.kill(pid, "SIGKILL");
    seraph.kill("SIGKILL");
  }
});

describe("seraph serve --workers N", () => {
  it("serves one listener from N worker processes and sums their metrics", async () => {
    expect(seraph.output()).toContain(`${WORKERS} workers`);
    expect(children(seraph.child.pid!)).toHaveLength(WORKERS);
    const before = await metrics();
    expect(before.get("seraph_cluster_workers")).toBe(WORKERS);
    const route = 'seraph_http_requests_total{method="GET",route="/_matrix/identity/v2",status="200"}';
    const n = 20;
    for (let i = 0; i < n; i++) expect(await status()).toBe(200);
    // Every worker's counter, summed by the primary: all n requests, whichever worker took them.
    const after = await metrics();
    expect((after.get(route) ?? 0) - (before.get(route) ?? 0)).toBe(n);
    // Each worker reports its own leader gauge: one series per worker.
    const series = [...after.keys()].filter((k) => k.startsWith("seraph_background_leader{"));
    expect(series).toHaveLength(WORKERS);
  }, 60_000);

  it("keeps the per-route rate limits in the primary, so that they hold across workers", async () => {
    // Each request on a new connection: the workers take them in turn. Per-worker buckets would let
    // REGISTER_LIMIT requests through each worker.
    const codes: number[] = [];
    for (let i = 0; i < REGISTER_LIMIT * WORKERS; i++) {
      const res = await fetch(`${seraph.url}/_matrix/identity/v2/account/register`, {
        method: "POST",
        headers: { connection: "close", "content-type": "application/json" },
        body: "{}",
      });
      await res.text();
      codes.push(res.status);
    }
    expect(codes.filter((c) => c !== 429)).toHaveLength(REGISTER_LIMIT);
    expect(codes.slice(REGISTER_LIMIT).every((c) => c === 429)).toBe(true);
  }, 60_000);

  it("runs the shared background tasks in exactly one worker, and moves them when it dies", async () => {
    const [leader] = await waitFor("one leader", async () => {
      const l = leaders(await metrics());
      return l.length === 1 ? l : undefined;
    });
    expect(children(seraph.child.pid!)).toContain(leader);
    process.kill(leader!, "SIGKILL");
    const next = await waitFor("a replaced worker and a new leader", async () => {
      const m = await metrics();
      const l = leaders(m);
      return m.get("seraph_cluster_worker_restarts_total") === 1 &&
        m.get("seraph_cluster_workers") === WORKERS &&
        l.length === 1 &&
        l[0] !== leader
        ? l[0]
        : undefined;
    });
    expect(alive(leader!)).toBe(false);
    expect(children(seraph.child.pid!)).toHaveLength(WORKERS);
    expect(children(seraph.child.pid!)).toContain(next);
    for (let i = 0; i < 6; i++) expect(await status()).toBe(200);
  }, 180_000);

  it("drains every worker on SIGTERM and exits 0", async () => {
    const workers = children(seraph.child.pid!);
    expect(workers).toHaveLength(WORKERS);
    // A request on a kept-alive connection, then SIGTERM: the answer arrives and every process ends.
    const inflight = fetch(`${seraph.url}/_matrix/identity/v2`).then((r) => r.status);
    expect(await inflight).toBe(200);
    seraph.kill("SIGTERM");
    expect(await seraph.exited).toBe(0);
    for (const pid of workers) expect(alive(pid)).toBe(false);
    expect(seraph.output()).not.toMatch(/"level":(50|60)/);
  }, 60_000);
});
