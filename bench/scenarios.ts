/**
 * The scenarios: which requests each one sends, how its answers are checked, and the two ways of
 * measuring (a steady autocannon load, or single requests one at a time).
 */
import autocannon from "autocannon";
import { lookupHash } from "../src/threepid/normalise.js";
import type { Args } from "./args.js";
import {
  type CpuShare,
  cpuProbeMs,
  percentile,
  sleep,
  startCpuMeter,
  treeReads,
  treeRss,
  waitForQuiet,
} from "./measure.js";
import { BENCH_MEDIUM, BENCH_USER, benchAddress, benchMxid, type SeedResult } from "./seed.js";
import type { Instance } from "./servers.js";

export const V2 = "/_matrix/identity/v2";
export const V1 = "/_matrix/identity/api/v1";

export interface Context {
  args: Args;
  seed: SeedResult;
  urls: string[];
  publicKey: string;
  /** Embedded PostgreSQL's postmaster, to measure the database's CPU. */
  postmasterPid: number | undefined;
  /** Mails the SMTP sink accepted so far (mail scenarios). */
  mails: () => number;
}

interface LoadScenario {
  requests: autocannon.Request[];
  /** Sends sample requests to every instance and throws unless the answers are right. */
  verify(): Promise<void>;
}

export async function getJson(
  url: string,
  init: { method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { raw: text };
  }
  return { status: res.status, body };
}

export function expect(cond: boolean, what: string): void {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/** A small deterministic PRNG, so every run asks for the same associations. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const bearer = (ctx: Context) => ({ authorization: `Bearer ${ctx.seed.token}` });

/** `count` lookup bodies of `size` distinct random existing addresses, with the expected mappings. */
export function lookupBodies(
  ctx: Context,
  size: number,
  count: number,
  seed: number,
): Array<{ body: string; expected: Map<string, string> }> {
  const n = ctx.seed.associations;
  if (size > n) throw new Error(`cannot pick ${size} distinct addresses out of ${n}`);
  const rand = prng(seed);
  const out: Array<{ body: string; expected: Map<string, string> }> = [];
  for (let b = 0; b < count; b++) {
    const picked = new Set<number>();
    while (picked.size < size) picked.add(Math.floor(rand() * n));
    const expected = new Map<string, string>();
    for (const i of picked)
      expected.set(lookupHash(benchAddress(i), BENCH_MEDIUM, ctx.seed.pepper), benchMxid(i));
    const body = JSON.stringify({
      addresses: [...expected.keys()],
      algorithm: "sha256",
      pepper: ctx.seed.pepper,
    });
    out.push({ body, expected });
  }
  return out;
}

async function checkLookup(url: string, ctx: Context, body: string, expected: Map<string, string>) {
  const r = await getJson(`${url}${V2}/lookup`, {
    method: "POST",
    body,
    headers: { ...bearer(ctx), "content-type": "application/json" },
  });
  expect(r.status === 200, `lookup answered ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
  const mappings = r.body.mappings as Record<string, string>;
  expect(
    Object.keys(mappings).length === expected.size,
    `lookup returned ${Object.keys(mappings).length} of ${expected.size} mappings`,
  );
  for (const [hash, mxid] of expected) expect(mappings[hash] === mxid, `mapping of ${hash} is ${mxid}`);
}

function loadScenario(name: string, ctx: Context): LoadScenario {
  const each = async (fn: (url: string) => Promise<void>) => {
    for (const url of ctx.urls) await fn(url);
  };
  const pk = encodeURIComponent(ctx.publicKey);
  const getOk = (
    path: string,
    headers: Record<string, string>,
    check: (b: Record<string, unknown>) => boolean,
  ) => ({
    requests: [{ method: "GET", path, headers }],
    verify: () =>
      each(async (url) => {
        const r = await getJson(`${url}${path}`, { headers });
        expect(r.status === 200 && check(r.body), `GET ${path}: ${r.status} ${JSON.stringify(r.body)}`);
      }),
  });
  switch (name) {
    case "bare":
      // The same path as `pubkey`; the bare server answers any path alike.
      return getOk(`${V2}/pubkey/ed25519:0`, {}, (b) => typeof b.public_key === "string");
    case "pubkey":
      return getOk(`${V2}/pubkey/ed25519:0`, {}, (b) => b.public_key === ctx.publicKey);
    case "isvalid":
      return getOk(`${V2}/pubkey/isvalid?public_key=${pk}`, {}, (b) => b.valid === true);
    case "versions":
      return getOk("/_matrix/identity/versions", {}, (b) => Array.isArray(b.versions));
    case "status":
      return getOk(V2, {}, (b) => Object.keys(b).length === 0);
    case "ephemeral":
      return getOk(
        `${V2}/pubkey/ephemeral/isvalid?public_key=${encodeURIComponent(ctx.seed.ephemeralKey)}`,
        {},
        (b) => b.valid === true,
      );
    case "account":
      return getOk(`${V2}/account`, bearer(ctx), (b) => b.user_id === BENCH_USER);
    case "v1lookup": {
      const rand = prng(1);
      const picks = Array.from({ length: 4096 }, () => Math.floor(rand() * ctx.seed.associations));
      const path = (i: number) => `${V1}/lookup?medium=email&address=${encodeURIComponent(benchAddress(i))}`;
      const paths = picks.map(path);
      return {
        requests: rotating({ method: "GET", path: paths[0]! }, paths.length, (i) => ({ path: paths[i]! })),
        verify: () =>
          each(async (url) => {
            for (const i of picks.slice(0, 5)) {
              const r = await getJson(`${url}${path(i)}`);
              expect(
                r.status === 200 && r.body.mxid === benchMxid(i) && typeof r.body.signatures === "object",
                `v1 lookup of ${benchAddress(i)}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`,
              );
            }
          }),
      };
    }
    case "storeinvite":
    case "requesttoken": {
      // A new address (and client secret) for every request: each one is a write and a mail.
      const run = `${process.pid}-${Date.now()}`;
      const bodyOf =
        name === "storeinvite"
          ? (i: number) =>
              JSON.stringify({
                medium: "email",
                address: `invitee-${run}-${i}@example.org`,
                room_id: "!room:hs.example",
                sender: BENCH_USER,
              })
          : (i: number) =>
              JSON.stringify({
                client_secret: `bench-${run}-${i}`,
                email: `req-${run}-${i}@example.org`,
                send_attempt: 1,
              });
      const path = name === "storeinvite" ? `${V2}/store-invite` : `${V2}/validate/email/requestToken`;
      const headers = { ...bearer(ctx), "content-type": "application/json" };
      return {
        requests: rotating({ method: "POST", path, headers }, Number.MAX_SAFE_INTEGER, (i) => ({
          body: bodyOf(i),
        })),
        verify: () =>
          each(async (url) => {
            const before = ctx.mails();
            const r = await getJson(`${url}${path}`, { method: "POST", body: bodyOf(-1 - before), headers });
            expect(r.status === 200, `POST ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
            const until = Date.now() + 10_000;
            while (ctx.mails() <= before && Date.now() < until) await sleep(50);
            expect(ctx.mails() > before, `no mail reached the SMTP sink after POST ${path}`);
          }),
      };
    }
    default: {
      const size = Number(/^lookup(\d+)$/.exec(name)![1]);
      // About 50 000 distinct hashes (at least 16 bodies) in rotation.
      const bodies = lookupBodies(ctx, size, Math.max(16, Math.ceil(50_000 / size)), size);
      const buffers = bodies.map((b) => Buffer.from(b.body));
      const headers = { ...bearer(ctx), "content-type": "application/json" };
      return {
        requests: rotating({ method: "POST", path: `${V2}/lookup`, headers }, buffers.length, (i) => ({
          body: buffers[i]!,
        })),
        verify: () =>
          each(async (url) => {
            for (const b of bodies.slice(0, 3)) await checkLookup(url, ctx, b.body, b.expected);
          }),
      };
    }
  }
}

/**
 * One request whose path or body goes round `count` variants in the order requests are sent, over
 * all connections. With a fixed list per connection instead, 50 connections that start together ask
 * for the same few associations at any moment, and the lookups hit SQLite's page cache far more
 * often than real clients would (measured: 2.5 instead of 29 read() calls per 100-hash lookup, and
 * 30 % more throughput, depending on how the connections happened to start).
 */
function rotating(
  base: autocannon.Request,
  count: number,
  variant: (i: number) => Partial<autocannon.Request>,
): autocannon.Request[] {
  let next = 0;
  return [
    {
      ...base,
      setupRequest: (req) => {
        const v = variant(next);
        next = (next + 1) % count;
        return { ...req, ...v };
      },
    },
  ];
}

export interface LoadRow {
  scenario: string;
  backend: string;
  instances: number;
  workers: number | "auto";
  associations: number;
  connections: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: number;
  non2xx: number;
  total: number;
  /** Seconds until every connection had its first answer. */
  ramp: number;
  /** read() system calls of the servers per request (SQLite reads pages with pread). */
  readsPerRequest: number;
  /** cpuProbeMs() just before the run. */
  probeMs: number;
  cpu: CpuShare;
  /** Resident memory of the server processes after the window: the sum, and the largest process. */
  rss: number;
  rssMax: number;
  /** The file-backed part of `rss` (the memory-mapped database). */
  rssFile: number;
}

/**
 * One autocannon run whose connections stay open throughout: a ramp (until every connection has had
 * an answer), `--warmup` seconds, then the measured window of `--duration` seconds, read from
 * autocannon's per-response events. Node accepts about one new connection per event-loop turn, so
 * under a heavy load the last of 50 fresh connections waits seconds for its first answer (the `ramp`
 * column); measuring on fresh connections, as a plain autocannon run does, would mix that ramp
 * into the percentiles and the rate.
 */
export async function runLoad(name: string, ctx: Context, instances: Instance[]): Promise<LoadRow> {
  const { args } = ctx;
  const scenario = loadScenario(name, ctx);
  await scenario.verify();
  await waitForQuiet(args.quietWaitMs, args.maxOther);
  const probeMs = cpuProbeMs();

  const answered = new Set<object>();
  let window: { latencies: number[]; non2xx: number; errors: number } | undefined;
  const run = autocannon({
    url: ctx.urls,
    connections: args.connections,
    requests: scenario.requests,
    timeout: 60,
    duration: 3600, // stopped below
  });
  run.on("response", (client, status, _bytes, ms) => {
    answered.add(client);
    if (!window) return;
    if (status >= 200 && status < 300) window.latencies.push(ms);
    else window.non2xx++;
  });
  run.on("reqError", () => {
    if (window) window.errors++;
  });

  const rampStart = performance.now();
  while (answered.size < args.connections && performance.now() - rampStart < 180_000) await sleep(20);
  const ramp = (performance.now() - rampStart) / 1000;
  await sleep(args.warmup * 1000);

  const pids = instances.map((i) => i.child.pid!);
  const meter = startCpuMeter(pids, ctx.postmasterPid);
  const reads0 = treeReads(pids);
  const t0 = performance.now();
  const w = { latencies: [] as number[], non2xx: 0, errors: 0 };
  window = w;
  await sleep(args.duration * 1000);
  window = undefined;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = meter();
  const reads1 = treeReads(pids);
  const rss = treeRss(pids);
  run.stop();
  await run;

  // A benchmark of errors is worthless: check the servers still answer correctly afterwards.
  await scenario.verify();
  const sorted = w.latencies.sort((a, b) => a - b);
  const total = sorted.length + w.non2xx;
  let reads = 0;
  for (const [pid, n] of reads1) reads += n - (reads0.get(pid) ?? n);
  return {
    scenario: name,
    backend: name === "bare" ? "-" : args.backend,
    instances: name === "bare" ? 1 : args.instances,
    workers: args.workers,
    associations: args.associations,
    connections: args.connections,
    rps: total / elapsed,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    max: sorted.at(-1) ?? Number.NaN,
    errors: w.errors,
    non2xx: w.non2xx,
    total,
    ramp,
    readsPerRequest: reads / Math.max(1, total),
    probeMs,
    cpu,
    rss: rss.total,
    rssMax: rss.max,
    rssFile: rss.file,
  };
}

export interface LatencyRow {
  scenario: string;
  backend: string;
  instances: number;
  associations: number;
  hashes: number;
  samples: number;
  mean: number;
  p50: number;
  min: number;
  max: number;
  cpu: CpuShare;
  probeMs: number;
}

/** `samples` lookups of `size` hashes, one at a time (each distinct and checked), after 5 unmeasured ones. */
export async function runLatency(name: string, ctx: Context, instances: Instance[]): Promise<LatencyRow> {
  const size = Number(/^latency(\d+)$/.exec(name)![1]);
  const warm = 5;
  const bodies = lookupBodies(ctx, size, ctx.args.samples + warm, 10_000 + size);
  const url = ctx.urls[0]!;
  await waitForQuiet(ctx.args.quietWaitMs, ctx.args.maxOther);
  const probeMs = cpuProbeMs();
  const meter = startCpuMeter(
    instances.map((i) => i.child.pid!),
    ctx.postmasterPid,
  );
  const times: number[] = [];
  for (const [i, b] of bodies.entries()) {
    const t0 = performance.now();
    const res = await fetch(`${url}${V2}/lookup`, {
      method: "POST",
      body: b.body,
      headers: { ...bearer(ctx), "content-type": "application/json" },
    });
    const text = await res.text();
    const t1 = performance.now();
    expect(res.status === 200, `lookup answered ${res.status}`);
    const mappings = (JSON.parse(text) as { mappings: Record<string, string> }).mappings;
    expect(Object.keys(mappings).length === b.expected.size, "every hash maps");
    for (const [hash, mxid] of b.expected) expect(mappings[hash] === mxid, `mapping of ${hash}`);
    if (i >= warm) times.push(t1 - t0);
  }
  const cpu = meter();
  const sorted = [...times].sort((a, b) => a - b);
  return {
    cpu,
    probeMs,
    scenario: name,
    backend: ctx.args.backend,
    instances: ctx.args.instances,
    associations: ctx.args.associations,
    hashes: size,
    samples: times.length,
    mean: times.reduce((s, t) => s + t, 0) / times.length,
    p50: sorted[Math.floor(sorted.length / 2)]!,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
  };
}
