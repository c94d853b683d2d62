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
import { migrateToLatest, openStore, type Store } from "../../src/store/database.js";
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
