/**
 * Load benchmarks of a real Seraph: seeds a fresh database, starts one or more `seraph serve` child
 * processes on it, and drives them with autocannon from this process (so the load generator and the
 * server do not share an event loop; they do share the machine's cores). A bare node:http server
 * (bench/bare-server.ts) is measured in the same run as the ceiling. See bench/README.md.
 *
 *   npm run bench -- --backend sqlite --associations 100000 --scenario pubkey,lookup100 \
 *     --duration 10 --connections 50 --instances 1 [--workers N|auto] [--explain]
 *
 * The parts: args.ts (options), seed.ts (the database), servers.ts (processes), scenarios.ts (what
 * is sent and checked, how it is measured), measure.ts (/proc, CPU probe), report.ts (tables).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { resolveConfig } from "../src/config/load.js";
import { loadOrCreateKeyFile } from "../src/crypto/key-file.js";
import { MAIL_SCENARIOS, parse } from "./args.js";
import { explain } from "./explain.js";
import { attempts, log } from "./measure.js";
import { createPostgresCluster } from "./postgres.js";
import { environment, fmt, type RoundRow, tables } from "./report.js";
import { type Context, expect, getJson, type LatencyRow, runLatency, runLoad, V2 } from "./scenarios.js";
import { seedDatabase } from "./seed.js";
import {
  buildIfStale,
  freePort,
  type Instance,
  pinProcesses,
  startBare,
  startSeraph,
  stopInstance,
} from "./servers.js";
import { startBenchSink } from "./smtp-sink.js";

/** Rate limits on, each far above what any run sends (2^31 - 1 per minute; a billion per hour, as burst). */
const UNREACHABLE = { burst: 1e9, per_hour: 1e9 };
const UNREACHABLE_LIMITS = {
  enabled: true,
  register_per_minute: 2 ** 31 - 1,
  authenticated_per_minute: 2 ** 31 - 1,
  store_invite_per_minute: 2 ** 31 - 1,
  request_token_per_minute: 2 ** 31 - 1,
  invites_per_address: UNREACHABLE,
  invites_per_sender: UNREACHABLE,
  email_per_address: UNREACHABLE,
  sms_per_number: UNREACHABLE,
  sms_per_country: UNREACHABLE,
  lookup_per_account: UNREACHABLE,
  lookup_per_ip: UNREACHABLE,
  v1_lookup_per_ip: UNREACHABLE,
};

async function main(): Promise<void> {
  const args = parse();
  const dir = await mkdtemp(join(tmpdir(), "seraph-bench-"));
  const cleanups: Array<() => Promise<void>> = [() => rm(dir, { recursive: true, force: true })];
  const instances: Instance[] = [];
  let bare: Instance | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () => {
    cleaning ??= (async () => {
      await Promise.all([...instances, ...(bare ? [bare] : [])].map(stopInstance));
      for (const c of cleanups.reverse())
        await c().catch((e: unknown) => log(`cleanup failed: ${String(e)}`));
    })();
    return cleaning;
  };
  const onSignal = () => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    if (args.pin) pinProcesses("0", "1");
    if (args.built) buildIfStale();
    const env =
      environment() +
      (args.pin ? "; pinned: servers on CPU 0, load generator on CPU 1" : "") +
      (args.built ? "; server: node dist/main.js (compiled)" : "; server: src/ under tsx") +
      (args.rateLimits ? "; rate limits on, no budget reachable" : "; rate limits off");
    log(env);
    let database: Record<string, unknown>;
    let postmasterPid: number | undefined;
    if (args.backend === "postgres") {
      const cluster = await createPostgresCluster(args.pgUrl);
      cleanups.push(() => cluster.stop());
      database = { postgres: { url: await cluster.createDatabase(), pool_size: args.poolSize } };
      postmasterPid = cluster.postmasterPid();
      log(`postgres: ${cluster.description}`);
    } else {
      database = { sqlite: { path: join(dir, "seraph.db") } };
    }
    // Mail scenarios send to a local SMTP sink (pooled SMTP, as in production); else mail goes to an outbox.
    const sink = args.scenarios.some((s) => MAIL_SCENARIOS.includes(s)) ? await startBenchSink() : undefined;
    if (sink) cleanups.push(() => sink.close());
    const base = {
      server_name: "is.bench",
      database,
      signing_key_path: join(dir, "signing.key"),
      log: { level: "warn" },
      email: {
        outbox_dir: join(dir, "outbox"),
        from: "Seraph <noreply@is.bench>",
        ...(sink ? { smtp: { host: "127.0.0.1", port: sink.port, tls: "none" } } : {}),
      },
      rate_limit: args.rateLimits ? UNREACHABLE_LIMITS : { enabled: false },
      server: { workers: args.workers },
    };
    const cfg = resolveConfig(base);

    // Created once here, so that instances started together share one key (and the seed signs with it).
    const { keys } = loadOrCreateKeyFile(cfg.signing_key_path);
    log(`seeding ${args.associations} associations (${args.backend})...`);
    const seed = await seedDatabase(cfg.database, {
      associations: args.associations,
      signWith: { serverName: base.server_name, key: keys[0]! },
    });
    log(`seeded in ${(seed.ms / 1000).toFixed(2)} s`);
    await mkdir(join(dir, "outbox"), { recursive: true });

    for (let i = 0; i < args.instances; i++) {
      const port = await freePort();
      const path = join(dir, `seraph-${i}.yaml`);
      await writeFile(
        path,
        stringify({
          ...base,
          listen: { host: "127.0.0.1", port },
          public_base_url: `http://127.0.0.1:${port}`,
        }),
      );
      instances.push(await startSeraph(path, i, args.nodeOptions, args.built));
    }
    const urls = instances.map((i) => i.url);
    log(`seraph: ${urls.join(", ")}`);
    if (args.ceiling) {
      bare = await startBare(args.workers, args.nodeOptions);
      log(`bare node:http: ${bare.url}`);
    }

    // The pepper clients would use comes from hash_details, like a real client.
    for (const url of urls) {
      const hd = await getJson(`${url}${V2}/hash_details`, {
        headers: { authorization: `Bearer ${seed.token}` },
      });
      expect(
        hd.status === 200 && hd.body.lookup_pepper === seed.pepper,
        `hash_details: ${JSON.stringify(hd.body)}`,
      );
    }
    const pk = await getJson(`${urls[0]}${V2}/pubkey/ed25519:0`);
    expect(typeof pk.body.public_key === "string", "pubkey answers");
    const ctx: Context = {
      args,
      seed,
      urls,
      publicKey: pk.body.public_key as string,
      postmasterPid,
      mails: () => sink?.count() ?? 0,
    };

    const loadRows: RoundRow[] = [];
    const latencyRows: LatencyRow[] = [];
    for (let round = 1; round <= args.rounds; round++) {
      for (const name of args.scenarios) {
        log(`running ${name}${args.rounds > 1 ? ` (round ${round} of ${args.rounds})` : ""}...`);
        if (name.startsWith("latency")) {
          const r = await attempts(args, () => runLatency(name, ctx, instances));
          latencyRows.push(r);
          log(`  mean ${fmt(r.mean, 1)} ms, p50 ${fmt(r.p50, 1)} ms, max ${fmt(r.max, 1)} ms`);
        } else {
          const target = name === "bare" && bare ? [bare] : instances;
          const tctx = { ...ctx, urls: target.map((i) => i.url) };
          const r = await attempts(args, () => runLoad(name, tctx, target));
          loadRows.push({ ...r, round });
          log(
            `  ${fmt(r.rps)} req/s, p50 ${fmt(r.p50, 1)} ms, p90 ${fmt(r.p90, 1)} ms, p99 ${fmt(r.p99, 1)} ms, ` +
              `max ${fmt(r.max, 1)} ms, errors ${r.errors}, non-2xx ${r.non2xx}, ramp ${fmt(r.ramp, 1)} s`,
          );
        }
      }
    }
    await Promise.all(instances.map(stopInstance));
    const warnings = instances.reduce((s, i) => s + i.warnings, 0);

    const out = [env, "", ...tables(args, loadRows, latencyRows)];
    if (args.explain) out.push("", await explain(ctx, cfg));
    out.push(
      "",
      `seed: ${seed.associations} associations in ${(seed.ms / 1000).toFixed(2)} s; server warnings logged: ${warnings}`,
    );
    process.stdout.write(`${out.join("\n")}\n`);
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  log(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
