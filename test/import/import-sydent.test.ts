import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { generateSeed, signingKeyFromSeed } from "../../src/crypto/ed25519.js";
import { readKeyFile, writeKeyFile } from "../../src/crypto/key-file.js";
import { ImportInterrupted, importSydent } from "../../src/import/importer.js";
import { recordFromLive } from "../../src/import/record-live.js";
import { SydentConfig, SydentInputError } from "../../src/import/sydent-config.js";
import { SydentDb } from "../../src/import/sydent-db.js";
import { type Asker, RecordedVerifier } from "../../src/import/verify.js";
import { migrateToLatest, openStore } from "../../src/store/database.js";
import { BACKEND, call, startSeraph } from "../support/seraph.js";
import { copyFixture, dumpDatabase, importConfig } from "./support.js";

const cleanup: string[] = [];
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "seraph-import-"));
  cleanup.push(d);
  return d;
}

/** The moment the fixture's sessions were young (they expire 24 h after sydent made them). */
const FIXTURE_NOW = Date.parse("2026-12-01T19:30:00Z");

const sydent = copyFixture();
cleanup.push(join(sydent, ".."));
const expected = JSON.parse(readFileSync(join(sydent, "expected.json"), "utf8")) as Record<string, unknown>;
const db = join(sydent, "sydent.db");
const conf = join(sydent, "sydent.conf");

/**
 * SQLite: the schema's indexes and triggers and the journal mode (a fresh import drops and rebuilds the
 * secondary indexes, and the change-log triggers of association_hashes around its one bulk statement).
 */
function sqliteSchema(dir: string): { indexes: unknown[]; journal: unknown } {
  const raw = new BetterSqlite3(join(dir, "seraph.db"));
  try {
    return {
      indexes: raw
        .prepare(
          "select name, tbl_name, sql from sqlite_master where type in ('index', 'trigger') order by name",
        )
        .all(),
      journal: raw.pragma("journal_mode", { simple: true }),
    };
  } finally {
    raw.close();
  }
}

async function dump(dir: string) {
  const cfg = await importConfig(dir, sydent);
  const store = await openStore(cfg.database);
  try {
    await migrateToLatest(store);
    return await dumpDatabase(store.db);
  } finally {
    await store.close();
  }
}

describe(`import-sydent (${BACKEND})`, () => {
  it("imports the fixture, and a real Seraph over HTTP gives sydent's recorded answers", async () => {
    const dir = tempDir();
    const config = await importConfig(dir, sydent);
    const report = await importSydent({
      sydentDb: db,
      sydentConfig: conf,
      config,
      sessions: true,
      now: FIXTURE_NOW,
    });
    const bindings = report.phases.find((p) => p.phase === "bindings")!;
    expect(bindings.counters.imported).toBe(240);
    expect(bindings.counters.fixed_leaked_invites).toBe(4);
    expect(bindings.counters.signed_kept).toBe(236);
    expect(report.phases.find((p) => p.phase === "invites")!.counters).toMatchObject({
      imported: 27,
      pending: 25,
      abandoned_by_sydent: 2,
    });
    expect(report.phases.find((p) => p.phase === "tokens")!.counters.imported_as_hashes).toBe(9);
    expect(report.phases.find((p) => p.phase === "sessions")!.counters.imported).toBe(35);
    expect(report.keyAction).toBe("written");
    expect(readKeyFile(config.signing_key_path)[0]!.publicKeyBase64).toBe(
      "nYT9TIasQHiut4CAFTbOzuRmZ6VfeTRuFS8Aw/ByUiI",
    );

    // Tokens are stored only as hashes.
    const rows = await dump(dir);
    // sydent's consent_version is kept per account (6 of the fixture's 10 have one).
    const accounts = rows.accounts as Array<{ user_id: string; sydent_consent_version: string | null }>;
    expect(accounts).toHaveLength(10);
    expect(accounts.filter((a) => a.sydent_consent_version === "someversion")).toHaveLength(6);
    expect(accounts.find((a) => a.user_id === "@acct7:127.0.0.1:59857")?.sydent_consent_version).toBeNull();
    expect(report.phases.find((p) => p.phase === "accounts")!.counters.with_consent_version).toBe(6);
    const tokens = (expected.answers as { accounts: Array<{ token: string }> }).accounts.map((a) => a.token);
    expect(JSON.stringify(rows)).not.toContain(tokens[0]!);

    const served = await startSeraph(
      { server_name: "sydent-fixture.test", terms: { path: join(sydent, "terms.yaml") } },
      { dir },
    );
    try {
      const ask: Asker = async (method, path, opts = {}) => {
        const res = await call(`${served.url}${path}`, {
          method,
          ...(opts.body !== undefined ? { body: opts.body } : {}),
          headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
        });
        return { status: res.status, raw: res.text };
      };
      const result = await new RecordedVerifier(ask).run(expected);
      expect(result.differences).toEqual([]);
      expect(result.questions).toBeGreaterThan(390);
      // The documented fixes, and nothing else.
      expect(result.fixed.leaked_invites).toBe(4);
      expect(result.fixed.casefold).toBeGreaterThanOrEqual(2);
      expect(Object.keys(result.fixed).sort()).toEqual(
        ["algorithms_order", "casefold", "echo_address", "leaked_invites", "versions", "wording"].sort(),
      );
      // Byte for byte: the v1 answer is sydent's stored sgAssoc.
      const first = (
        expected.answers as { v1_lookup: Array<{ medium: string; address: string; raw: string }> }
      ).v1_lookup[0]!;
      const res = await call(
        `${served.url}/_matrix/identity/api/v1/lookup?medium=${first.medium}&address=${encodeURIComponent(first.address)}`,
      );
      expect(res.text).toBe(first.raw);
      expect(res.headers.get("content-type")).toContain("application/json");

      // --against URL: the questions built from sydent's database, asked of a live server (here the served
      // Seraph itself), then of an in-process Seraph: nothing differs.
      const sydentDb = SydentDb.open(db, { quickCheck: false });
      let recorded: Record<string, unknown>;
      try {
        recorded = await recordFromLive(sydentDb, SydentConfig.read(conf), served.url, {
          limit: 1000,
          now: Date.now(),
          importPeers: true,
        });
      } finally {
        sydentDb.close();
      }
      expect((recorded.answers as { v1_lookup: unknown[] }).v1_lookup).toHaveLength(240);
      const self = await new RecordedVerifier(ask).run(recorded);
      expect(self.differences).toEqual([]);
      expect(self.identical).toBe(self.questions);
    } finally {
      await served.close();
    }
  }, 180_000);

  it("--dry-run writes nothing: no key file, and the database stays empty", async () => {
    const dir = tempDir();
    const config = await importConfig(dir, sydent);
    const report = await importSydent({ sydentDb: db, sydentConfig: conf, config, dryRun: true });
    expect(report.dryRun).toBe(true);
    expect(report.keyAction).toBe("would write");
    expect(report.phases.find((p) => p.phase === "bindings")!.counters.imported).toBe(240);
    expect(existsSync(config.signing_key_path)).toBe(false);
    if (BACKEND === "sqlite") expect(existsSync(config.database.sqlite.path)).toBe(false);
    // A real import afterwards finds an empty database.
    await importSydent({ sydentDb: db, sydentConfig: conf, config, now: FIXTURE_NOW });
  });

  it("--resume after an interrupted import ends with the same database as an uninterrupted one", async () => {
    const whole = tempDir();
    await importSydent({
      sydentDb: db,
      sydentConfig: conf,
      config: await importConfig(whole, sydent),
      sessions: true,
      now: FIXTURE_NOW,
      batchSize: 7,
    });

    const cut = tempDir();
    const config = await importConfig(cut, sydent);
    const opts = { sydentDb: db, sydentConfig: conf, config, sessions: true, now: FIXTURE_NOW, batchSize: 7 };
    await expect(importSydent({ ...opts, interruptAfterBatches: 5 })).rejects.toBeInstanceOf(
      ImportInterrupted,
    );
    await expect(importSydent(opts)).rejects.toThrow(/--resume/);
    // The resumed run keeps the first run's clock and options.
    const report = await importSydent({ ...opts, now: FIXTURE_NOW + 999_999, sessions: false, resume: true });
    expect(report.resumed).toBe(true);
    expect(await dump(cut)).toEqual(await dump(whole));
    if (BACKEND === "sqlite") {
      // Every index is back, as migrations make them, and the database is in WAL mode again.
      const fresh = tempDir();
      const store = await openStore((await importConfig(fresh, sydent)).database);
      await migrateToLatest(store);
      await store.close();
      expect(sqliteSchema(cut)).toEqual(sqliteSchema(fresh));
      expect(sqliteSchema(whole)).toEqual(sqliteSchema(fresh));
      expect(sqliteSchema(cut).journal).toBe("wal");
    }
  });

  it("--resume after the process is killed (SIGKILL) inside a batch ends with the same database", async () => {
    const whole = tempDir();
    const base = { sydentDb: db, sydentConfig: conf, sessions: true, now: FIXTURE_NOW, batchSize: 7 };
    await importSydent({ ...base, config: await importConfig(whole, sydent) });

    const cut = tempDir();
    const opts = { ...base, config: await importConfig(cut, sydent) };
    const child = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        join(import.meta.dirname, "kill-child.ts"),
        JSON.stringify({ ...opts, interruptAfterBatches: 5 }),
      ],
      { encoding: "utf8", timeout: 120_000 },
    );
    expect(child.signal, child.stderr).toBe("SIGKILL");
    // Killed inside a transaction: SQLite's rollback journal is still there, hot.
    if (BACKEND === "sqlite") expect(existsSync(join(cut, "seraph.db-journal"))).toBe(true);
    await expect(importSydent(opts)).rejects.toThrow(/--resume/);
    const report = await importSydent({ ...opts, resume: true });
    expect(report.resumed).toBe(true);
    expect(await dump(cut)).toEqual(await dump(whole));
    if (BACKEND === "sqlite") expect(sqliteSchema(cut)).toEqual(sqliteSchema(whole));
  });

  it("refuses a non-empty database unless --merge, which skips what is there", async () => {
    const dir = tempDir();
    const config = await importConfig(dir, sydent);
    await importSydent({ sydentDb: db, sydentConfig: conf, config, now: FIXTURE_NOW });
    await expect(
      importSydent({ sydentDb: db, sydentConfig: conf, config, now: FIXTURE_NOW }),
    ).rejects.toThrow(/--merge/);
    const before = await dump(dir);
    const report = await importSydent({
      sydentDb: db,
      sydentConfig: conf,
      config,
      now: FIXTURE_NOW,
      merge: true,
    });
    const bindings = report.phases.find((p) => p.phase === "bindings")!;
    expect(bindings.counters.already_present).toBe(240);
    expect(bindings.counters.imported ?? 0).toBe(0);
    const after = await dump(dir);
    expect(after.associations).toEqual(before.associations);
    expect(after.access_tokens).toEqual(before.access_tokens);
  });

  it("--rotate-pepper keeps sydent's pepper current and starts a rotation", async () => {
    const dir = tempDir();
    const config = await importConfig(dir, sydent);
    const report = await importSydent({ sydentDb: db, sydentConfig: conf, config, rotatePepper: true });
    expect(report.rotationStarted).toBe(true);
    const peppers = (await dump(dir)).lookup_peppers as Array<{ pepper: string; state: string }>;
    expect(peppers.find((p) => p.state === "current")?.pepper).toBe("D79Ls");
    expect(peppers.filter((p) => p.state === "pending")).toHaveLength(1);
  });

  it("imports or skips rows of replication peers (--peers), reporting either way", async () => {
    const copy = copyFixture();
    cleanup.push(join(copy, ".."));
    const raw = new BetterSqlite3(join(copy, "sydent.db"));
    const signed =
      '{"medium": "email", "address": "from.peer@example.org", "mxid": "@p:hs.example", "ts": 1700000000000, "not_before": 1700000000000, "not_after": 4853600000000, "signatures": {"peer.example": {"ed25519:0": "c2lnbmF0dXJl"}}}';
    raw
      .prepare(
        `insert into global_threepid_associations (medium, address, mxid, ts, notBefore, notAfter, originServer, originId, sgAssoc)
         values ('email', 'from.peer@example.org', '@p:hs.example', 1700000000000, 1700000000000, 4853600000000, 'peer.example', 7, ?)`,
      )
      .run(signed);
    raw.close();
    const peerDb = join(copy, "sydent.db");
    const skipDir = tempDir();
    const skipped = await importSydent({
      sydentDb: peerDb,
      sydentConfig: conf,
      config: await importConfig(skipDir, sydent),
      peers: "skip",
    });
    expect(skipped.phases[0]!.counters).toMatchObject({ imported: 240, peer_skipped: 1 });
    const importDir = tempDir();
    const imported = await importSydent({
      sydentDb: peerDb,
      sydentConfig: conf,
      config: await importConfig(importDir, sydent),
    });
    expect(imported.phases[0]!.counters).toMatchObject({ imported: 241, peer_imported: 1 });
    // The peer's own signature is served as it was.
    const rows = (await dump(importDir)).associations as Array<{
      address: string;
      signed_json: string | null;
    }>;
    expect(rows.find((r) => r.address === "from.peer@example.org")?.signed_json).toBe(signed);
  });

  it("skips rows holding a NUL character (nul_skipped) and imports the rest", async () => {
    const copy = copyFixture();
    cleanup.push(join(copy, ".."));
    const raw = new BetterSqlite3(join(copy, "sydent.db"));
    // sydent stored what it was sent: PostgreSQL text cannot hold these, and Seraph refuses them over HTTP.
    raw
      .prepare(
        `insert into global_threepid_associations (medium, address, mxid, ts, notBefore, notAfter, originServer, originId, sgAssoc)
         values ('email', ?, '@n:hs.example', 1700000000000, 1700000000000, 4853600000000, 'sydent-fixture.test', 99999, '{}')`,
      )
      .run("nul\u0000@example.org");
    raw
      .prepare(
        `insert into invite_tokens (medium, address, room_id, sender, token, received_ts)
         values ('email', 'invitee@example.org', ?, '@s:hs.example', 'nul-token', 1700000000)`,
      )
      .run("!room\u0000:hs.example");
    raw.close();
    const dir = tempDir();
    const report = await importSydent({
      sydentDb: join(copy, "sydent.db"),
      sydentConfig: conf,
      config: await importConfig(dir, sydent),
      now: FIXTURE_NOW,
    });
    expect(report.phases.find((p) => p.phase === "bindings")!.counters).toMatchObject({
      imported: 240,
      nul_skipped: 1,
    });
    expect(report.phases.find((p) => p.phase === "invites")!.counters).toMatchObject({
      imported: 27,
      nul_skipped: 1,
    });
    expect(JSON.stringify(await dump(dir))).not.toContain("\\u0000");
  });

  it("refuses a key file holding another key unless --replace-key", async () => {
    const dir = tempDir();
    const config = await importConfig(dir, sydent);
    const other = signingKeyFromSeed(generateSeed(), "ed25519:0");
    writeKeyFile(config.signing_key_path, [other]);
    await expect(importSydent({ sydentDb: db, sydentConfig: conf, config })).rejects.toThrow(/--replace-key/);
    expect(readKeyFile(config.signing_key_path)[0]!.publicKeyBase64).toBe(other.publicKeyBase64);
    const report = await importSydent({ sydentDb: db, sydentConfig: conf, config, replaceKey: true });
    expect(report.keyAction).toBe("replaced");
    expect(readKeyFile(config.signing_key_path).map((k) => k.publicKeyBase64)).toEqual([
      "nYT9TIasQHiut4CAFTbOzuRmZ6VfeTRuFS8Aw/ByUiI",
    ]);
  });

  describe("bad input: a clear message, nothing written", () => {
    async function refused(files: { db?: string; conf?: string }, message: RegExp) {
      const dir = tempDir();
      const config = await importConfig(dir, sydent);
      const err = await importSydent({
        sydentDb: files.db ?? db,
        sydentConfig: files.conf ?? conf,
        config,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SydentInputError);
      expect((err as Error).message).toMatch(message);
      expect(existsSync(config.signing_key_path)).toBe(false);
      if (BACKEND === "sqlite") expect(existsSync(config.database.sqlite.path)).toBe(false);
    }

    it("a file that is not a database", async () => {
      const f = join(tempDir(), "sydent.db");
      writeFileSync(f, "hello, I am a text file and not sydent's database at all\n");
      await refused({ db: f }, /not an SQLite database/);
    });

    it("an SQLite database that is not sydent's", async () => {
      const f = join(tempDir(), "other.db");
      const other = new BetterSqlite3(f);
      other.exec("create table t (x)");
      other.close();
      await refused({ db: f }, /not a sydent one/);
    });

    it("an unknown schema version", async () => {
      const copy = copyFixture();
      cleanup.push(join(copy, ".."));
      const raw = new BetterSqlite3(join(copy, "sydent.db"));
      raw.pragma("user_version = 4");
      raw.close();
      await refused({ db: join(copy, "sydent.db") }, /schema version 4/);
    });

    it("a config without a signing key", async () => {
      const f = join(tempDir(), "sydent.conf");
      writeFileSync(f, readFileSync(conf, "utf8").replace(/^ed25519\.signingkey = ed25519 .*$/m, ""));
      await refused({ conf: f }, /ed25519\.signingkey is not set/);
    });

    it("a half-written database (hot journal, or cut short)", async () => {
      const copy = copyFixture();
      cleanup.push(join(copy, ".."));
      writeFileSync(join(copy, "sydent.db-journal"), Buffer.alloc(512, 1));
      await refused({ db: join(copy, "sydent.db") }, /half-written/);

      const cutShort = join(tempDir(), "sydent.db");
      writeFileSync(cutShort, readFileSync(db).subarray(0, 64 * 1024));
      await refused({ db: cutShort }, /damaged|half-written|cannot be read/);
    });
  });
});
