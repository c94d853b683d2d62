import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestDatabase,
  dropTestDatabase,
  pausedTransaction,
  someoneWaitsOnALock,
} from "../../test/support/postgres.js";
import { resolveConfig } from "../config/load.js";
import type { HashChanges, ScanCursor } from "../store/association-hashes.js";
import { migrateToLatest, openStore, type Store } from "../store/database.js";
import { lookupHash } from "../threepid/normalise.js";
import { HashIndex, type HashIndexReads } from "./hash-index.js";
import { LookupService } from "./lookup.js";
import { publishAssociation, removeAssociation } from "./publish-association.js";

const address = (i: number) => `user${i}@example.org`;
const record = (i: number, mxid = `@u${i}:hs.test`) => ({
  medium: "email",
  address: address(i),
  mxid,
  ts: 1000 + i,
  notBefore: 1000,
  notAfter: 1e13,
});

/** Asks until the index answers (it is built in the background on first use). */
async function ready(index: HashIndex, pepperId: number): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if ((await index.lookup(pepperId, [])) !== undefined) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error("the index never became ready");
}

/** An index over a store's reads; `onScan` is told of every page read. */
function indexOver(store: Store, onScan = () => {}): HashIndex {
  const reads = store.repos.hashes;
  return new HashIndex({
    version: () => reads.version(),
    count: (p) => reads.count(p),
    changesSince: (p, after) => reads.changesSince(p, after),
    scan: (p, cursor, limit) => {
      onScan();
      return reads.scan(p, cursor, limit);
    },
  });
}

const backends = [
  {
    name: "SQLite (two connections to one file)",
    dialect: "sqlite",
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), "seraph-hash-index-"));
      const database = resolveConfig({ database: { sqlite: { path: join(dir, "seraph.db") } } }).database;
      return { database, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: "PostgreSQL (two pools on one database)",
    dialect: "postgres",
    open: async () => {
      const url = await createTestDatabase();
      const database = resolveConfig({ database: { postgres: { url } } }).database;
      return { database, cleanup: () => dropTestDatabase(url) };
    },
  },
];

describe.each(backends)("in-memory lookup index on $name", ({ open, dialect }) => {
  /** The instance that writes (binds, unbinds), and the one whose index answers. */
  let writer: Store;
  let reader: Store;
  let cleanup: () => Promise<void>;
  let pepper: { id: number; pepper: string };
  let index: HashIndex;
  let scans = 0;
  const hash = (i: number) => lookupHash(address(i), "email", pepper.pepper);
  const ask = async (...ids: number[]) => {
    const rows = await index.lookup(
      pepper.id,
      ids.map((i) => hash(i)),
    );
    return rows === undefined ? undefined : Object.fromEntries(rows.map((r) => [r.hash, r.mxid]));
  };
  const expectAnswer = async (ids: number[], want: Record<number, string>) => {
    const got = await ask(...ids);
    expect(got).toEqual(Object.fromEntries(Object.entries(want).map(([i, m]) => [hash(Number(i)), m])));
  };

  beforeAll(async () => {
    const opened = await open();
    cleanup = opened.cleanup;
    writer = await openStore(opened.database);
    await migrateToLatest(writer);
    reader = await openStore(opened.database);
    await writer.repos.peppers.insertIfAbsent("pepper-one", "current", 1);
    pepper = (await writer.repos.peppers.live())[0]!;
    for (let i = 1; i <= 30; i++) await publishAssociation(writer.transaction, record(i), 1);
    index = indexOver(reader, () => scans++);
    await ready(index, pepper.id);
  });

  afterAll(async () => {
    await reader?.close();
    await writer?.close();
    await cleanup?.();
  });

  it("answers what is bound, from memory", async () => {
    await expectAnswer([1, 2, 30, 31], { 1: "@u1:hs.test", 2: "@u2:hs.test", 30: "@u30:hs.test" });
    expect(index.size).toBe(30);
  });

  it("reads a page of no hashes with the version it was read at", async () => {
    await publishAssociation(writer.transaction, record(40), 1);
    const version = await reader.repos.hashes.version();
    expect(await reader.repos.hashes.scan(pepper.id + 1000, undefined, 10)).toEqual({
      rows: [],
      next: undefined,
      version,
    });
    // Pages of 7 (in the cursor's order, the version on each) hold every hash once.
    const paged: string[] = [];
    let cursor: ScanCursor | undefined;
    do {
      const page = await reader.repos.hashes.scan(pepper.id, cursor, 7);
      expect(page.version).toBe(version);
      paged.push(...page.rows.map((r) => r.hash));
      cursor = page.next;
    } while (cursor !== undefined);
    expect(paged.length).toBe(await reader.repos.hashes.count(pepper.id));
    expect(new Set(paged).size).toBe(paged.length);
    expect(paged).toContain(hash(40));
    await removeAssociation(writer.transaction, "email", address(40), "@u40:hs.test");
  });

  it("sees another instance's binds, rebinds and unbinds as soon as they commit, without reading all again", async () => {
    const before = scans;
    await publishAssociation(writer.transaction, record(31), 1);
    await expectAnswer([31], { 31: "@u31:hs.test" });
    await publishAssociation(writer.transaction, record(31, "@other:hs.test"), 1);
    await expectAnswer([31], { 31: "@other:hs.test" });
    await removeAssociation(writer.transaction, "email", address(31), "@other:hs.test");
    await expectAnswer([31, 1], { 1: "@u1:hs.test" });
    // An association deleted directly: its hashes go by the foreign key's cascade.
    await writer.db.deleteFrom("associations").where("address", "=", address(2)).execute();
    await expectAnswer([2, 3], { 3: "@u3:hs.test" });
    expect(scans).toBe(before);
  });

  it("ignores a rolled-back bind, and goes on applying changes after it", async () => {
    const before = scans;
    await expect(
      writer.transaction(async (r) => {
        const id = await r.associations.upsert(record(40));
        await r.hashes.insert([{ pepperId: pepper.id, associationId: id, hash: hash(40) }]);
        throw new Error("rolled back");
      }),
    ).rejects.toThrow("rolled back");
    await expectAnswer([40], {});
    await publishAssociation(writer.transaction, record(41), 1);
    await expectAnswer([40, 41], { 41: "@u41:hs.test" });
    expect(scans).toBe(before);
  });

  it("answers every lookup of a burst with the changes committed before it", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, k) => {
        await publishAssociation(writer.transaction, record(100 + k), 1);
        return ask(100 + k);
      }),
    );
    results.forEach((got, k) => {
      expect(got).toEqual({ [hash(100 + k)]: `@u${100 + k}:hs.test` });
    });
  });

  it("reads everything again when the change log was pruned past its version", async () => {
    await ask(1);
    const before = scans;
    await publishAssociation(writer.transaction, record(50), 1);
    await writer.repos.hashes.pruneChanges(await writer.repos.hashes.version());
    // Not answered from a table that missed the change: the database answers until it is read again.
    expect(await ask(50)).toBeUndefined();
    await ready(index, pepper.id);
    expect(scans).toBeGreaterThan(before);
    await expectAnswer([50, 1], { 50: "@u50:hs.test", 1: "@u1:hs.test" });
  });

  it("reads everything again when a statement logged 'everything changed'", async () => {
    await ask(1);
    const before = scans;
    await writer.db
      .updateTable("association_hash_version")
      .set((eb) => ({ v: eb("v", "+", 1) }))
      .execute();
    const v = await writer.repos.hashes.version();
    await writer.db
      .insertInto("association_hash_changes")
      .values({ v, pepper_id: null, hash: null })
      .execute();
    expect(await ask(1)).toBeUndefined();
    await ready(index, pepper.id);
    expect(scans).toBeGreaterThan(before);
    await expectAnswer([1], { 1: "@u1:hs.test" });
  });

  it.runIf(dialect === "postgres")(
    "reads everything again after a statement that changed > 10 000 rows",
    async () => {
      await ask(1);
      const before = scans;
      const from = await writer.repos.hashes.version();
      const id = (await sql<{ id: number }>`select min(id) as id from associations`.execute(writer.db))
        .rows[0]!.id;
      await sql`insert into association_hashes (pepper_id, hash, association_id, mxid)
      select ${pepper.id}, 'bulk' || i, ${id}, '@bulk:hs.test' from generate_series(1, 10001) as i`.execute(
        writer.db,
      );
      const c = await writer.repos.hashes.changesSince(pepper.id, from);
      expect(c.version).toBe(from + 1);
      expect(c.changes).toEqual([{ hash: null, mxid: null }]);
      expect(await index.lookup(pepper.id, ["bulk7"])).toBeUndefined();
      await ready(index, pepper.id);
      expect(scans).toBeGreaterThan(before);
      expect(await index.lookup(pepper.id, ["bulk7", "bulk10001"])).toHaveLength(2);
      await sql`delete from association_hashes where hash like 'bulk%'`.execute(writer.db);
      expect(await index.lookup(pepper.id, ["bulk7"])).toBeUndefined();
      await ready(index, pepper.id);
      expect(await index.lookup(pepper.id, ["bulk7"])).toEqual([]);
    },
  );

  it.runIf(dialect === "postgres")(
    "lets a bind wait for a rotation batch instead of deadlocking with it",
    async () => {
      const [{ id }] = (await sql<{ id: number }>`select min(id) as id from associations`.execute(writer.db))
        .rows as [{ id: number }];
      // A batch of two statements (as a rotation of more than 1000 rows writes): the second writes the hash
      // that the bind, started between them, writes too.
      const batch = await pausedTransaction<Store["repos"]>(
        (work) => writer.transaction(work),
        async (r) => {
          await r.hashes.lockVersion();
          await r.hashes.insert([
            { pepperId: pepper.id, associationId: Number(id), hash: "first-statement" },
          ]);
        },
        async (r) => {
          await r.hashes.insert([{ pepperId: pepper.id, associationId: Number(id), hash: hash(60) }]);
        },
      );
      const bind = publishAssociation(reader.transaction, record(60), 1);
      await someoneWaitsOnALock(writer.db);
      batch.go();
      await Promise.all([batch.done, bind]);
      await expectAnswer([60], { 60: "@u60:hs.test" });
    },
  );

  it("logs every version without a gap, and a bulk delete as well as single rows", async () => {
    const from = await writer.repos.hashes.version();
    await writer.repos.hashes.deleteForPepper(pepper.id, 5);
    const c: HashChanges = await writer.repos.hashes.changesSince(pepper.id, from);
    expect(c.lowest).toBe(from + 1);
    expect(c.version).toBeGreaterThan(from);
    expect(c.changes.filter((ch) => ch.mxid === null)).toHaveLength(5);
    // The index follows: five fewer.
    const size = index.size;
    await ask(1);
    expect(index.size).toBe(size - 5);
  });

  it("logs nothing of a pending pepper, and its switch makes a table read before it read again", async () => {
    let clock = 10_000;
    const rotation = new LookupService(
      {
        maxAddresses: 10_000,
        previousPepperGraceMs: 3_600_000,
        rotationIntervalMs: 0,
        rehashBatchSize: 1000,
        rotationSettleMs: 60_000,
        memoryIndex: false,
      },
      writer.repos,
      writer.transaction,
      () => clock,
    );
    await rotation.rotate();
    const next = (await writer.repos.peppers.live()).find((p) => p.state === "pending")!;
    const from = await writer.repos.hashes.version();
    // Every association hashed under the pending pepper; younger than the settle time: not switched yet.
    expect(await rotation.maintain()).toBeGreaterThan(0);
    expect(await writer.repos.hashes.count(next.id)).toBeGreaterThan(0);
    expect((await writer.repos.hashes.changesSince(next.id, from)).changes).toEqual([]);
    // A table of the pending pepper read now (as from a replica that has not replayed the switch yet),
    // then a bind that writes its hash under both peppers: only the current pepper's is logged.
    const early = indexOver(reader);
    await ready(early, next.id);
    await publishAssociation(writer.transaction, record(70), 1);
    clock += 60_000;
    await rotation.maintain();
    expect((await writer.repos.peppers.live()).find((p) => p.id === next.id)?.state).toBe("current");
    expect((await writer.repos.hashes.changesSince(next.id, from)).changes).toEqual([
      { hash: null, mxid: null },
    ]);
    const h70 = lookupHash(address(70), "email", next.pepper);
    expect(await early.lookup(next.id, [h70])).toBeUndefined();
    await ready(early, next.id);
    expect(await early.lookup(next.id, [h70])).toEqual([{ hash: h70, mxid: "@u70:hs.test" }]);
  });

  it("is dropped and read again for another pepper", async () => {
    await writer.db
      .insertInto("lookup_peppers")
      .values({ pepper: "pepper-two", state: "pending", created_ts: 2, activated_ts: null, retired_ts: null })
      .execute();
    const two = (await writer.repos.peppers.live()).find((p) => p.pepper === "pepper-two")!;
    await writer.repos.hashes.insert([
      {
        pepperId: two.id,
        associationId: Number(
          (await sql<{ id: number }>`select min(id) as id from associations`.execute(writer.db)).rows[0]!.id,
        ),
        hash: "h2",
      },
    ]);
    expect(await index.lookup(two.id, ["h2"])).toBeUndefined();
    await ready(index, two.id);
    expect(await index.lookup(two.id, ["h2"])).toEqual([{ hash: "h2", mxid: expect.any(String) }]);
    expect(index.size).toBe(1);
  });
});

describe("in-memory lookup index over reads from several servers", () => {
  const h = (i: number) => lookupHash(address(i), "email", "p");
  const none = { lowest: null, changes: [], tooMany: false };

  const onePage: HashIndexReads["scan"] = async () => ({
    rows: [{ hash: h(1), mxid: "@a:hs" }],
    next: undefined,
    version: 3,
  });
  const emptyLastPage: HashIndexReads["scan"] = async (_p, cursor) =>
    cursor === undefined
      ? { rows: [{ hash: h(1), mxid: "@a:hs" }], next: 1, version: 5 }
      : { rows: [], next: undefined, version: 3 };
  it.each([
    ["a page from a replica behind the others", onePage],
    ["an empty last page from a replica behind the others", emptyLastPage],
  ])("replays from the oldest version any page was read at (%s)", async (_case, scan) => {
    const asked: number[] = [];
    const index = new HashIndex({
      version: async () => 5,
      count: async () => 1,
      scan,
      changesSince: async (_p, after) => {
        asked.push(after);
        return after === 3
          ? { version: 5, lowest: 4, changes: [{ hash: h(2), mxid: "@b:hs" }], tooMany: false }
          : { version: 5, ...none };
      },
    });
    await ready(index, 1);
    expect(asked[0]).toBe(3);
    expect(await index.lookup(1, [h(1), h(2)])).toEqual([
      { hash: h(1), mxid: "@a:hs" },
      { hash: h(2), mxid: "@b:hs" },
    ]);
  });

  it("reads everything again rather than too many changes at once", async () => {
    let scans = 0;
    let version = 1;
    const index = new HashIndex({
      version: async () => version,
      count: async () => 0,
      scan: async () => {
        scans++;
        return { rows: [], next: undefined, version };
      },
      changesSince: async (_p, after) =>
        after < version ? { version, lowest: after + 1, changes: [], tooMany: true } : { version, ...none },
    });
    await ready(index, 1);
    version = 2;
    expect(await index.lookup(1, [h(1)])).toBeUndefined();
    await ready(index, 1);
    expect(scans).toBe(2);
  });
});
