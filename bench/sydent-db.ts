/**
 * A synthetic sydent 2.x database (schema v5, the tables and indexes sydent creates) with N bindings, and the
 * speed and memory of `seraph import-sydent` on it. See bench/README.md.
 *
 *   npx tsx bench/sydent-db.ts --bindings 1000000 [--out DIR] [--import] [--backend sqlite|postgres]
 *
 * Writes DIR/sydent.db and DIR/sydent.conf (a fresh signing key). About 2 % of the addresses were bound
 * twice (an older global row remains), 1 % unbound (a local tombstone, no global row), 1 % are msisdn and
 * every 1000th signed association carries sydent's leaked `invites`. With --import, a child process imports
 * it into a fresh Seraph database and prints bindings per second and its peak RSS.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import BetterSqlite3 from "better-sqlite3";
import { resolveConfig } from "../src/config/load.js";
import { encodeBase64 } from "../src/crypto/base64.js";
import { generateSeed, signingKeyFromSeed, signJson } from "../src/crypto/ed25519.js";
import { importSydent } from "../src/import/importer.js";
import { lookupHash } from "../src/threepid/normalise.js";
import { createPostgresCluster } from "./postgres.js";

const SERVER = "sydent-bench.test";
const PEPPER = "bEnCh";

/** sydent's schema after its v5 migration (`sqlite3 sydent.db .schema` of a sydent 2.6.1 database). */
const SCHEMA = `
CREATE TABLE invite_tokens (id integer primary key, medium varchar(16) not null, address varchar(256) not null, room_id varchar(256) not null, sender varchar(256) not null, token varchar(256) not null, received_ts bigint, sent_ts bigint);
CREATE INDEX invite_token_medium_address on invite_tokens(medium, address);
CREATE INDEX invite_token_token on invite_tokens(token);
CREATE TABLE ephemeral_public_keys(id integer primary key, public_key varchar(256) not null, verify_count bigint default 0, persistence_ts bigint);
CREATE UNIQUE INDEX ephemeral_public_keys_index on ephemeral_public_keys(public_key);
CREATE TABLE threepid_validation_sessions (id integer primary key, medium varchar(16) not null, address varchar(256) not null, clientSecret varchar(32) not null, validated int default 0, mtime bigint not null);
CREATE TABLE threepid_token_auths (id integer primary key, validationSession integer not null, token varchar(32) not null, sendAttemptNumber integer not null, foreign key (validationSession) references threepid_validations(id));
CREATE TABLE peers (id integer primary key, name varchar(255) not null, port integer default null, lastSentVersion integer, lastPokeSucceededAt integer, active integer not null default 0);
CREATE UNIQUE INDEX name on peers(name);
CREATE TABLE peer_pubkeys (id integer primary key, peername varchar(255) not null, alg varchar(16) not null, key text not null, foreign key (peername) references peers (name));
CREATE UNIQUE INDEX peername_alg on peer_pubkeys(peername, alg);
CREATE TABLE local_threepid_associations (id integer primary key autoincrement, medium varchar(16) not null, address varchar(256) not null, mxid varchar(256), ts integer, notBefore bigint, notAfter bigint, lookup_hash VARCHAR(256));
CREATE UNIQUE INDEX local_threepid_medium_address on local_threepid_associations(medium, address);
CREATE TABLE global_threepid_associations (id integer primary key autoincrement, medium varchar(16) not null, address varchar(256) not null, mxid varchar(256) not null, ts integer not null, notBefore bigint not null, notAfter integer not null, originServer varchar(255) not null, originId integer not null, sgAssoc text not null, lookup_hash VARCHAR(256));
CREATE INDEX global_threepid_medium_address on global_threepid_associations (medium, address);
CREATE INDEX global_threepid_medium_lower_address on global_threepid_associations (medium, lower(address));
CREATE UNIQUE INDEX global_threepid_originServer_originId on global_threepid_associations (originServer, originId);
CREATE INDEX threepid_validation_sessions_mtime ON threepid_validation_sessions(mtime);
CREATE TABLE hashing_metadata (id integer primary key, lookup_pepper varchar(256));
CREATE TABLE accounts(user_id TEXT NOT NULL PRIMARY KEY, created_ts BIGINT NOT NULL, consent_version TEXT);
CREATE TABLE tokens(token TEXT NOT NULL PRIMARY KEY, user_id TEXT NOT NULL);
CREATE TABLE accepted_terms_urls(user_id TEXT NOT NULL, url TEXT NOT NULL);
CREATE UNIQUE INDEX accepted_terms_urls_idx ON accepted_terms_urls (user_id, url);
CREATE INDEX global_threepid_lookup_hash ON global_threepid_associations(lookup_hash);
`;

/** Python's json.dumps spacing, as sydent stores sgAssoc. */
function pyJson(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(pyJson).join(", ")}]`;
  return `{${Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => `${JSON.stringify(k)}: ${pyJson(x)}`)
    .join(", ")}}`;
}

export function writeSydentDb(dir: string, bindings: number): { db: string; conf: string } {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "sydent.db");
  rmSync(path, { force: true });
  const key = signingKeyFromSeed(generateSeed(), "ed25519:0");
  const db = new BetterSqlite3(path);
  db.pragma("journal_mode = OFF");
  db.pragma("synchronous = OFF");
  db.exec(SCHEMA);
  db.prepare("insert into hashing_metadata (id, lookup_pepper) values (0, ?)").run(PEPPER);
  const local = db.prepare(
    "insert or replace into local_threepid_associations (medium, address, mxid, ts, notBefore, notAfter, lookup_hash) values (?, ?, ?, ?, ?, ?, ?)",
  );
  const tomb = db.prepare(
    "insert or replace into local_threepid_associations (medium, address, mxid, ts, notBefore, notAfter, lookup_hash) values (?, ?, null, ?, null, null, null)",
  );
  const global = db.prepare(
    `insert into global_threepid_associations (medium, address, mxid, ts, notBefore, notAfter, originServer, originId, sgAssoc, lookup_hash)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const unbound = db.prepare("delete from global_threepid_associations where medium = ? and address = ?");
  const base = Date.parse("2024-01-01T00:00:00Z");
  let originId = 0;
  const bind = (medium: string, address: string, mxid: string, ts: number, leak: boolean) => {
    const hash = lookupHash(address, medium, PEPPER);
    const fields: Record<string, unknown> = {
      medium,
      address,
      mxid,
      ts,
      not_before: ts,
      not_after: ts + 3_153_600_000_000,
    };
    if (leak)
      fields.invites = [{ medium: "email", address: "someone.else@example.org", room_id: "!r:hs.example" }];
    const signed = signJson(fields, SERVER, key);
    local.run(medium, address, mxid, ts, ts, ts + 3_153_600_000_000, hash);
    originId++;
    global.run(medium, address, mxid, ts, ts, ts + 3_153_600_000_000, SERVER, originId, pyJson(signed), hash);
  };
  const insertAll = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const msisdn = i % 100 === 7;
      const medium = msisdn ? "msisdn" : "email";
      const address = msisdn ? String(4915100000000 + i) : `user.${i}@example${i % 97}.org`;
      const ts = base + i * 10;
      bind(medium, address, `@user${i}:hs${i % 13}.example`, ts, i % 1000 === 500);
      // 2 %: bound again later to another user (the older global row stays).
      if (i % 50 === 3) bind(medium, address, `@other${i}:hs.example`, ts + 5, false);
      // 1 %: unbound (tombstone in the local table; sydent deletes the global rows).
      if (i % 100 === 11) {
        tomb.run(medium, address, ts + 7);
        unbound.run(medium, address);
      }
    }
  });
  for (let i = 0; i < bindings; i += 20_000) insertAll(i, Math.min(bindings, i + 20_000));
  db.pragma("user_version = 5");
  db.close();
  const conf = join(dir, "sydent.conf");
  writeFileSync(
    conf,
    `[general]\nserver.name = ${SERVER}\n\n[db]\ndb.file = sydent.db\n\n[crypto]\ned25519.signingkey = ed25519 0 ${encodeBase64(key.seed)}\n`,
  );
  return { db: path, conf };
}

async function measureImport(
  dir: string,
  backend: string,
  pgUrl: string | undefined,
  batchSize: number | undefined,
): Promise<void> {
  const target = mkdtempSync(join(tmpdir(), "seraph-import-bench-"));
  // PostgreSQL without --pg-url: the test suite's embedded cluster (its own processes, not in this RSS).
  const cluster = backend === "postgres" ? await createPostgresCluster(pgUrl) : undefined;
  const config = resolveConfig({
    server_name: SERVER,
    database: cluster
      ? { postgres: { url: await cluster.createDatabase() } }
      : { sqlite: { path: join(target, "seraph.db") } },
    signing_key_path: join(target, "signing.key"),
    log: { level: "silent" },
  });
  let peakHeap = 0;
  let peakLive = 0;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakHeap = Math.max(peakHeap, m.heapUsed + m.external + m.arrayBuffers);
  }, 100);
  // Live memory after each batch (with --expose-gc): what the import keeps, not garbage not yet collected.
  const gc = (globalThis as { gc?: () => void }).gc;
  const progress = {
    start() {},
    stop() {},
    tick() {
      if (!gc) return;
      gc();
      const m = process.memoryUsage();
      peakLive = Math.max(peakLive, m.heapUsed + m.external + m.arrayBuffers);
    },
  };
  const started = process.hrtime.bigint();
  const report = await importSydent({
    sydentDb: join(dir, "sydent.db"),
    sydentConfig: join(dir, "sydent.conf"),
    config,
    progress,
    ...(batchSize ? { batchSize } : {}),
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  const cpu = process.cpuUsage();
  const b = report.phases.find((p) => p.phase === "bindings")!;
  const rss = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(
    `${JSON.stringify({ backend, rowsRead: b.rows, imported: b.counters.imported, seconds: Number(seconds.toFixed(2)), bindingsPerSecond: Math.round(b.rows / seconds), importedPerSecond: Math.round((b.counters.imported ?? 0) / seconds), peakRssMiB: Math.round(rss), peakJsHeapMiB: Math.round(peakHeap / 1048576), peakLiveAfterBatchMiB: Math.round(peakLive / 1048576), cpuSeconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(1)), bindingsPerCpuSecond: Math.round(b.rows / ((cpu.user + cpu.system) / 1e6)) })}\n`,
  );
  rmSync(target, { recursive: true, force: true });
  await cluster?.stop();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      bindings: { type: "string", default: "1000000" },
      out: { type: "string" },
      import: { type: "boolean" },
      backend: { type: "string", default: "sqlite" },
      "pg-url": { type: "string" },
      "measure-import": { type: "string" },
      "batch-size": { type: "string" },
    },
  });
  if (values["measure-import"])
    return measureImport(
      values["measure-import"],
      values.backend!,
      values["pg-url"],
      values["batch-size"] ? Number(values["batch-size"]) : undefined,
    );
  const n = Number(values.bindings);
  const dir = resolve(values.out ?? mkdtempSync(join(tmpdir(), "sydent-bench-")));
  const t0 = Date.now();
  writeSydentDb(dir, n);
  process.stdout.write(
    `wrote ${dir}/sydent.db with ${n} addresses in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  if (!values.import) return;
  // A child process, so that its peak RSS is the import's alone.
  const child = spawnSync(
    process.execPath,
    [
      ...process.execArgv,
      process.argv[1]!,
      "--measure-import",
      dir,
      "--backend",
      values.backend!,
      ...(values["pg-url"] ? ["--pg-url", values["pg-url"]] : []),
      ...(values["batch-size"] ? ["--batch-size", values["batch-size"]] : []),
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  process.exitCode = child.status ?? 1;
}

await main();
