import { Migrator, sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { publishAssociation } from "../services/publish-association.js";
import { lookupHash } from "../threepid/normalise.js";
import { migrateToLatest, openStore, type Store } from "./database.js";
import { SeraphMigrations } from "./migrations.js";

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

const record = (address: string, mxid: string, ts: number) => ({
  medium: "email",
  address,
  mxid,
  ts,
  notBefore: ts,
  notAfter: ts + 1e9,
});

describe("association_hashes.mxid", () => {
  it("follows a rebind to another mxid, and a late write by a rotation cannot make it stale", async () => {
    store = await openStore({ sqlite: { path: ":memory:" } });
    await migrateToLatest(store);
    const s = store;
    await s.db
      .insertInto("lookup_peppers")
      .values({ pepper: "p".repeat(32), state: "current", created_ts: 1, activated_ts: 1, retired_ts: null })
      .execute();
    const pepper = (await s.repos.peppers.live())[0]!;
    const hash = lookupHash("a@example.org", "email", pepper.pepper);
    const found = async () => (await s.repos.hashes.lookup(pepper.id, [hash]))[0]?.mxid;

    await publishAssociation(s.transaction, record("a@example.org", "@first:hs.test", 1), 1);
    expect(await found()).toBe("@first:hs.test");
    await publishAssociation(s.transaction, record("a@example.org", "@second:hs.test", 2), 2);
    expect(await found()).toBe("@second:hs.test");

    // A rotation batch that read the association before the rebind writes its hash afterwards: the
    // mxid is read when the row is written, so the lookup still answers the current one.
    const { id } = await s.db.selectFrom("associations").select("id").executeTakeFirstOrThrow();
    await s.repos.hashes.insert([{ pepperId: pepper.id, associationId: id, hash }]);
    expect(await found()).toBe("@second:hs.test");
  });

  it("is filled from the associations by the migration that adds it", async () => {
    store = await openStore({ sqlite: { path: ":memory:" } });
    const migrator = new Migrator({
      db: store.db,
      provider: new SeraphMigrations(store.dialect),
      migrationTableName: "seraph_migrations",
      migrationLockTableName: "seraph_migrations_lock",
    });
    const before = await migrator.migrateTo("0130_localisation");
    expect(before.error).toBeUndefined();
    const db = store.db;
    const pepper = await db
      .insertInto("lookup_peppers")
      .values({ pepper: "p".repeat(32), state: "current", created_ts: 1, activated_ts: 1, retired_ts: null })
      .returning("id")
      .executeTakeFirstOrThrow();
    const assoc = await db
      .insertInto("associations")
      .values({
        medium: "email",
        address: "b@example.org",
        mxid: "@b:hs.test",
        ts: 1,
        not_before: 1,
        not_after: 9,
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    // Written the way releases before 0150 wrote it (no mxid column yet).
    await sql`insert into association_hashes (pepper_id, hash, association_id)
      values (${pepper.id}, ${"old-hash"}, ${assoc.id})`.execute(db);
    await migrateToLatest(store);
    const rows = await db.selectFrom("association_hashes").select(["hash", "mxid"]).execute();
    expect(rows).toEqual([{ hash: "old-hash", mxid: "@b:hs.test" }]);
  });
});
