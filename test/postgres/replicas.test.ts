/**
 * `database.postgres.read_replicas` against a real streaming replica: a second PostgreSQL started from
 * a low-level base backup of a test primary (test/support/postgres.ts `startReplica`). Reads through
 * `store.reader()` go to the replica, writes to the primary; a replica whose replay is paused beyond
 * `max_replica_lag_ms` is skipped; a replica that goes down under load costs no failed read, and
 * serves again once it is back and caught up.
 */
import { type Kysely, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NO_LOG } from "../../src/core/logger.js";
import { generateSeed, signingKeyFromSeed } from "../../src/crypto/ed25519.js";
import { sha256Hex } from "../../src/crypto/hash.js";
import { AccountService } from "../../src/services/accounts.js";
import { KeyService } from "../../src/services/keys.js";
import { Terms } from "../../src/services/terms.js";
import { migrateToLatest, openStore, type Store } from "../../src/store/database.js";
import { repositories } from "../../src/store/repositories.js";
import type { Database } from "../../src/store/schema.js";
import { type PostgresCluster, startPostgres, startReplica } from "../support/postgres.js";

let primary: PostgresCluster;
let replica: PostgresCluster;
let store: Store;
let primaryUrl: string;
let replicaUrl: string;
const MAX_LAG_MS = 1500;

/** The same database on the replica's port. */
function onReplica(url: string): string {
  const u = new URL(url);
  u.port = String(replica.port);
  return u.toString();
}

async function inRecovery(db: Kysely<Database>): Promise<boolean> {
  const r = await sql<{ r: boolean }>`select pg_is_in_recovery() as r`.execute(db);
  return r.rows[0]!.r;
}

/** Runs a statement as superuser directly on the replica (pausing replay and such). */
async function onReplicaAdmin(statement: string): Promise<void> {
  const pg = (await import("pg")).default;
  const client = new pg.Client({ connectionString: replica.adminUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

async function waitFor(what: string, probe: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const quiet = NO_LOG;

beforeAll(async () => {
  primary = await startPostgres();
  primaryUrl = await primary.createDatabase();
  const direct = await openStore({ sqlite: { path: ":memory:" }, postgres: pgOptions([]) });
  await migrateToLatest(direct);
  await direct.close();
  replica = await startReplica(primary);
  replicaUrl = onReplica(primaryUrl);
  store = await openStore({ sqlite: { path: ":memory:" }, postgres: pgOptions([replicaUrl]) }, quiet);
}, 120_000);

function pgOptions(read_replicas: string[]) {
  return {
    url: primaryUrl,
    pool_size: 4,
    statement_timeout_ms: 10_000,
    read_replicas,
    max_replica_lag_ms: MAX_LAG_MS,
    ssl: { enabled: false, verify_certificates: true },
  };
}

afterAll(async () => {
  await store?.close();
  await replica?.stop();
  await primary?.stop();
});

async function insertKey(key: string): Promise<void> {
  await store.db
    .insertInto("ephemeral_keys")
    .values({ public_key: key, created_ts: Date.now() } as never)
    .execute();
}

async function readerSees(key: string): Promise<boolean> {
  const r = await store
    .reader()
    .selectFrom("ephemeral_keys")
    .select("public_key")
    .where("public_key", "=", key)
    .executeTakeFirst();
  return r !== undefined;
}

describe("read replicas", () => {
  it("reads from the replica and writes to the primary; a write reaches the reader by streaming", async () => {
    expect(await inRecovery(store.reader())).toBe(true);
    expect(await inRecovery(store.db)).toBe(false);
    await insertKey("replicated-key");
    await waitFor("the write to be replayed", () => readerSees("replicated-key"));
    expect(await inRecovery(store.reader())).toBe(true);
  });

  it("skips a replica whose replay lags beyond max_replica_lag_ms, and uses it again once caught up", async () => {
    await onReplicaAdmin("select pg_wal_replay_pause()");
    try {
      // Writes go on; the replica's last replayed commit grows old.
      await waitFor(
        "the lagging replica to be skipped",
        async () => {
          await insertKey(`lag-${Date.now()}`);
          return !(await inRecovery(store.reader()));
        },
        60_000,
      );
      await insertKey("written-while-lagging");
      // Served by the primary now: the reader sees the latest write although the replica does not.
      expect(await readerSees("written-while-lagging")).toBe(true);
    } finally {
      await onReplicaAdmin("select pg_wal_replay_resume()");
    }
    await waitFor("the replica to serve again", () => inRecovery(store.reader()));
    expect(await readerSees("written-while-lagging")).toBe(true);
  }, 120_000);

  it("checks tokens and ephemeral keys on the replica; what it has not replayed yet is asked of the primary", async () => {
    // A reader that keeps using the paused replica for the whole test (a lag limit of 10 minutes).
    const patient = await openStore(
      { sqlite: { path: ":memory:" }, postgres: { ...pgOptions([replicaUrl]), max_replica_lag_ms: 600_000 } },
      quiet,
    );
    const terms = new Terms({
      docs: { privacy: { version: "1", langs: { en: { name: "Privacy", url: "https://is.test/p1" } } } },
    });
    const accounts = new AccountService(
      { tokenLifetimeSeconds: 0, homeserverAllowlist: [] },
      patient.repos.accounts,
      { verifyOpenIdToken: async () => "@u:hs.test" },
      terms,
      Date.now,
      repositories(patient.reader(), "postgres").accounts,
    );
    const onReplica = repositories(patient.reader(), "postgres").accounts;
    const onReplicaKeys = repositories(patient.reader(), "postgres").keys;
    const register = () =>
      accounts.register({ accessToken: "x", tokenType: "Bearer", matrixServerName: "hs.test" });
    const old = await register();
    await waitFor(
      "the token on the replica",
      async () => (await onReplica.userForToken(sha256Hex(old), Date.now())) !== undefined,
    );
    await expect(accounts.authenticate(old, { skipTerms: false })).rejects.toMatchObject({
      errcode: "M_TERMS_NOT_SIGNED",
    });
    await onReplicaAdmin("select pg_wal_replay_pause()");
    try {
      expect(await inRecovery(patient.reader())).toBe(true);
      // Terms accepted now, not replayed: the replica knows the token, the primary the acceptance.
      await accounts.acceptTerms(await accounts.authenticate(old, { skipTerms: true }), [
        "https://is.test/p1",
      ]);
      expect(await onReplica.acceptedUrls("@u:hs.test")).toEqual([]);
      expect((await accounts.authenticate(old, { skipTerms: false })).userId).toBe("@u:hs.test");
      // A token written now, not replayed: the primary answers.
      const fresh = await register();
      expect(await onReplica.userForToken(sha256Hex(fresh), Date.now())).toBeUndefined();
      expect((await accounts.authenticate(fresh, { skipTerms: false })).userId).toBe("@u:hs.test");
      // An invite's ephemeral key stored now: isvalid asks the primary.
      const key = "A".repeat(43);
      await insertKey(key);
      const keys = await KeyService.load(
        [signingKeyFromSeed(generateSeed())],
        patient.repos.keys,
        Date.now(),
        onReplicaKeys,
      );
      expect(await onReplicaKeys.ephemeralKeyExists(key)).toBe(false);
      expect(await keys.isValidEphemeral(key)).toBe(true);
      // A logout reaches the replica by replay: until then the replica still knows the token.
      await accounts.logout(await accounts.authenticate(old, { skipTerms: false }));
      expect(await patient.repos.accounts.userForToken(sha256Hex(old), Date.now())).toBeUndefined();
      expect((await accounts.authenticate(old, { skipTerms: false })).userId).toBe("@u:hs.test");
    } finally {
      await onReplicaAdmin("select pg_wal_replay_resume()");
    }
    await waitFor(
      "the logout replayed",
      async () => (await onReplica.userForToken(sha256Hex(old), Date.now())) === undefined,
    );
    await expect(accounts.authenticate(old, { skipTerms: false })).rejects.toMatchObject({
      errcode: "M_UNAUTHORIZED",
    });
    await patient.close();
  }, 120_000);

  it("loses no read when the replica goes down under load, and serves from it again once it is back", async () => {
    await insertKey("under-load");
    await waitFor(
      "the key on the replica",
      async () => (await inRecovery(store.reader())) && readerSees("under-load"),
    );
    let stop = false;
    let reads = 0;
    let fromReplica = 0;
    const failures: unknown[] = [];
    const worker = async () => {
      while (!stop) {
        try {
          const r = await sql<{ r: boolean; n: number }>`
            select pg_is_in_recovery() as r, (select count(*) from ephemeral_keys where public_key = 'under-load')::int as n
          `.execute(store.reader());
          expect(r.rows[0]!.n).toBe(1);
          reads++;
          if (r.rows[0]!.r) fromReplica++;
        } catch (err) {
          failures.push(err);
        }
      }
    };
    const load = Array.from({ length: 6 }, worker);
    await waitFor("reads from the replica under load", async () => fromReplica > 50);
    await replica.stopServer("immediate");
    const atOutage = reads;
    await waitFor("reads going on during the outage", async () => reads > atOutage + 200);
    const duringOutage = fromReplica;
    await replica.startServer();
    await waitFor("the replica back in service", async () => fromReplica > duringOutage + 50);
    stop = true;
    await Promise.all(load);
    expect(failures).toEqual([]);
    expect(store.reader()).toBeDefined();
  }, 180_000);
});
