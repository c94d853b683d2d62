import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestDatabase,
  dropTestDatabase,
  pausedTransaction,
  someoneWaitsOnALock,
} from "../../test/support/postgres.js";
import { resolveConfig } from "../config/load.js";
import { holdAccounts } from "./accounts.js";
import { migrateToLatest, openStore, type Store } from "./database.js";
import { KyselySubjectRepository } from "./subjects.js";

/** A transaction on `store` paused after `first` until `go()` (see `pausedTransaction`). */
const paused = (
  store: Store,
  first: (tx: Store["db"]) => Promise<void>,
  then?: (tx: Store["db"]) => Promise<void>,
) => pausedTransaction<Store["db"]>((work) => store.db.transaction().execute(work), first, then);

describe("logins and the purge of stale accounts on PostgreSQL", () => {
  let url: string;
  let a: Store;
  let b: Store;
  const old = 1000;
  const cutoff = 10_000;
  const account = (user: string) =>
    a.db.insertInto("accounts").values({ user_id: user, created_ts: old }).execute();
  const accounts = async () =>
    (await a.db.selectFrom("accounts").select("user_id").orderBy("user_id").execute()).map((r) => r.user_id);

  beforeAll(async () => {
    url = await createTestDatabase();
    const database = resolveConfig({ database: { postgres: { url } } }).database;
    a = await openStore(database);
    await migrateToLatest(a);
    b = await openStore(database);
  });

  afterAll(async () => {
    await b?.close();
    await a?.close();
    if (url) await dropTestDatabase(url);
  });

  it("a login holds its account's row until its token is in", async () => {
    await account("@login:hs.test");
    // The purge's first step: the candidate's row locked.
    const purge = await paused(
      a,
      async (tx) => {
        await sql`select user_id from accounts where user_id = '@login:hs.test' for update`.execute(tx);
      },
      async () => {},
    );
    const login = b.repos.accounts.createToken("@login:hs.test", "token-hash-1", cutoff + 1, null);
    await someoneWaitsOnALock(a.db);
    purge.go();
    await purge.done;
    await login;
    expect(await b.repos.accounts.userForToken("token-hash-1", cutoff + 2)).toBe("@login:hs.test");
  });

  it("a login whose account the purge deletes while it waits for the row creates the account again", async () => {
    await account("@deleted:hs.test");
    // The purge locks the row (the login's insert sees it and does nothing), then deletes it.
    const purge = await paused(
      a,
      async (tx) => {
        await sql`select user_id from accounts where user_id = '@deleted:hs.test' for update`.execute(tx);
      },
      async (tx) => {
        await tx.deleteFrom("accounts").where("user_id", "=", "@deleted:hs.test").execute();
      },
    );
    const login = b.repos.accounts.createToken("@deleted:hs.test", "token-hash-3", cutoff + 1, null);
    await someoneWaitsOnALock(a.db);
    purge.go();
    await purge.done;
    await login;
    expect(await accounts()).toContain("@deleted:hs.test");
    expect(await b.repos.accounts.userForToken("token-hash-3", cutoff + 2)).toBe("@deleted:hs.test");
  });

  it("a login to an existing account writes no new row version of it", async () => {
    await account("@steady:hs.test");
    const version = () =>
      sql<{ xmin: string }>`select xmin::text as xmin from accounts where user_id = '@steady:hs.test'`
        .execute(a.db)
        .then((r) => r.rows[0]?.xmin);
    const before = await version();
    await b.repos.accounts.createToken("@steady:hs.test", "token-hash-4", cutoff + 1, null);
    expect(before).toBeDefined();
    expect(await version()).toBe(before);
  });

  it("keeps a stale account whose login commits while the purge waits for its row", async () => {
    await account("@stale:hs.test");
    await account("@returning:hs.test");
    await a.db
      .insertInto("accepted_terms")
      .values({ user_id: "@returning:hs.test", url: "https://t/1", accepted_ts: old })
      .execute();
    // A login's first statement (as `createToken` writes it) has locked the account; its token comes later.
    const login = await paused(
      b,
      async (tx) => {
        await holdAccounts(tx, "postgres", [{ user_id: "@returning:hs.test", created_ts: cutoff }]);
      },
      async (tx) => {
        await tx
          .insertInto("access_tokens")
          .values({
            token_hash: "token-hash-2",
            user_id: "@returning:hs.test",
            created_ts: cutoff,
            expires_ts: null,
          })
          .execute();
      },
    );
    const purged = new KyselySubjectRepository(a.db, "postgres").purgeStaleAccounts(cutoff);
    await someoneWaitsOnALock(a.db);
    login.go();
    await login.done;
    expect(await purged).toBe(1);
    const left = await accounts();
    expect(left).toContain("@returning:hs.test");
    expect(left).not.toContain("@stale:hs.test");
    expect(await b.repos.accounts.acceptedUrls("@returning:hs.test")).toEqual(["https://t/1"]);
  });
});
