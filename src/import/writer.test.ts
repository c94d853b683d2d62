import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestDatabase,
  dropTestDatabase,
  pausedTransaction,
  someoneWaitsOnALock,
} from "../../test/support/postgres.js";
import { resolveConfig } from "../config/load.js";
import { migrateToLatest, openStore, type Store } from "../store/database.js";
import { writingHashes } from "../store/repositories.js";
import { lookupHash } from "../threepid/normalise.js";
import { ImportWriter } from "./writer.js";

/** Takes the version lock (`writingHashes` takes it first), then runs `hold` and commits on `go()`. */
const holdVersionLock = (store: Store, hold?: (r: Store["repos"]) => Promise<void>) =>
  pausedTransaction<Store["repos"]>(
    (work) => writingHashes(store.transaction)(work),
    async () => {},
    hold,
  );

describe("import writes on PostgreSQL take turns with a running server's hash writes", () => {
  let url: string;
  let server: Store;
  let importer: Store;
  let writer: ImportWriter;

  beforeAll(async () => {
    url = await createTestDatabase();
    const database = resolveConfig({ database: { postgres: { url } } }).database;
    server = await openStore(database);
    await migrateToLatest(server);
    importer = await openStore(database);
    writer = new ImportWriter(importer.db, importer.dialect);
  });

  afterAll(async () => {
    await importer?.close();
    await server?.close();
    if (url) await dropTestDatabase(url);
  });

  it("a merge's pepper waits for a switch to a pending pepper, and one pepper is current after both", async () => {
    await server.repos.peppers.insertIfAbsent("server-current", "current", 1);
    await server.repos.peppers.insertIfAbsent("server-pending", "pending", 2);
    const pending = (await server.repos.peppers.live()).find((p) => p.pepper === "server-pending")!;
    // The server's switch has taken the version lock and is about to read the pending row.
    const sw = await holdVersionLock(server, async (r) => {
      expect(await r.peppers.activate(pending.id, 3)).toBe(true);
    });
    const installed = writer.transaction((tx) => writer.installPepper(tx, "sydent-pepper", true, 4));
    await someoneWaitsOnALock(server.db);
    sw.go();
    await sw.done;
    expect(await installed).toMatchObject({ rehash: true });
    const states = await server.db
      .selectFrom("lookup_peppers")
      .select(["pepper", "state"])
      .orderBy("pepper")
      .execute();
    expect(states).toEqual([
      { pepper: "server-current", state: "previous" },
      { pepper: "server-pending", state: "previous" },
      { pepper: "sydent-pepper", state: "current" },
    ]);
  });

  it("merged tokens hold their accounts' rows, as a login does, so a running purge waits for them", async () => {
    await server.db.insertInto("accounts").values({ user_id: "@merged:hs.test", created_ts: 1 }).execute();
    // The purge's first step: the candidate's row locked.
    const purge = await pausedTransaction<Store["db"]>(
      (work) => server.db.transaction().execute(work),
      async (tx) => {
        await tx
          .selectFrom("accounts")
          .select("user_id")
          .where("user_id", "=", "@merged:hs.test")
          .forUpdate()
          .execute();
      },
    );
    // Two tokens of one user in one batch: the account is written once.
    const tokens = writer.transaction((tx) =>
      writer.writeTokens(tx, [
        { token: "sydent-token-1", userId: "@merged:hs.test", createdTs: 2 },
        { token: "sydent-token-2", userId: "@merged:hs.test", createdTs: 3 },
      ]),
    );
    await someoneWaitsOnALock(server.db);
    purge.go();
    await purge.done;
    expect(await tokens).toBe(0);
    expect(
      await server.db
        .selectFrom("accounts")
        .select("created_ts")
        .where("user_id", "=", "@merged:hs.test")
        .execute(),
    ).toEqual([{ created_ts: 1 }]);
    expect(
      await server.db
        .selectFrom("access_tokens")
        .select("user_id")
        .where("user_id", "=", "@merged:hs.test")
        .execute(),
    ).toHaveLength(2);
  });

  it("hashing the associations under sydent's pepper takes the version lock before its first row", async () => {
    const pepper = (await server.repos.peppers.live()).find((p) => p.pepper === "sydent-pepper")!;
    const { id } = await server.db
      .insertInto("associations")
      .values({
        medium: "email",
        address: "a@example.org",
        mxid: "@a:hs.test",
        ts: 1,
        not_before: 1,
        not_after: 9,
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    // A bind's transaction holds the lock and then writes the hash the import is about to write: had the
    // import written it first and then waited for the lock (in the table's trigger), they would deadlock.
    const bind = await holdVersionLock(server, async (r) => {
      await r.hashes.insert([
        { pepperId: pepper.id, associationId: id, hash: lookupHash("a@example.org", "email", pepper.pepper) },
      ]);
    });
    const rehashed = writer.rehashAfter(pepper, 0, 100);
    await someoneWaitsOnALock(server.db);
    bind.go();
    await bind.done;
    expect(await rehashed).toBe(id);
    expect(await server.db.selectFrom("association_hashes").select("mxid").execute()).toEqual([
      { mxid: "@a:hs.test" },
    ]);
  });
});
