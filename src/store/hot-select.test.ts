import { afterEach, describe, expect, it } from "vitest";
import { migrateToLatest, openStore, type Store } from "./database.js";
import { hotSelect } from "./hot-select.js";
import { sqliteConnection } from "./sqlite-connection.js";

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

/** A promise and the function that resolves it. */
function latch(): { wait: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

async function sqliteStore(): Promise<Store> {
  store = await openStore({ sqlite: { path: ":memory:" } });
  await migrateToLatest(store);
  return store;
}

describe("hot SELECTs on SQLite", () => {
  it("read committed rows straight away", async () => {
    const s = await sqliteStore();
    await s.repos.accounts.createToken("@a:hs.test", "hash-a", 1, null);
    expect(await s.repos.accounts.userForToken("hash-a", 2)).toBe("@a:hs.test");
    expect(await s.repos.accounts.userForToken("hash-b", 2)).toBeUndefined();
    await s.repos.accounts.createToken("@b:hs.test", "hash-b", 1, 5);
    expect(await s.repos.accounts.userForToken("hash-b", 4)).toBe("@b:hs.test");
    expect(await s.repos.accounts.userForToken("hash-b", 5)).toBeUndefined();
  });

  it("never see a transaction's rows before it commits, nor after it rolls back", async () => {
    const s = await sqliteStore();
    const { wait: held, open: release } = latch();
    const { wait: didInsert, open: inserted } = latch();
    const failing = s
      .transaction(async (repos) => {
        await repos.accounts.addAcceptedUrls("@a:hs.test", ["https://terms.test/1"], 1);
        inserted();
        await held;
        throw new Error("rolled back on purpose");
      })
      .catch((e: Error) => e.message);
    await didInsert;
    // The shared connection is inside the transaction: this read waits for it instead of reading its rows.
    let answer: string[] | undefined;
    const reading = s.repos.accounts.acceptedUrls("@a:hs.test").then((urls) => {
      answer = urls;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(answer).toBeUndefined();
    release();
    expect(await failing).toBe("rolled back on purpose");
    await reading;
    expect(answer).toEqual([]);

    await s.transaction(async (repos) => {
      await repos.accounts.addAcceptedUrls("@a:hs.test", ["https://terms.test/2"], 2);
      // Inside the transaction its own rows are visible (through Kysely, on the transaction's handle).
      expect(await repos.accounts.acceptedUrls("@a:hs.test")).toEqual(["https://terms.test/2"]);
    });
    expect(await s.repos.accounts.acceptedUrls("@a:hs.test")).toEqual(["https://terms.test/2"]);
  });
});

describe("hot SELECTs batched per turn of the event loop (SQLite)", () => {
  /** A SELECT that says whether it ran inside a transaction, and one that takes one parameter. */
  async function probes() {
    const s = await sqliteStore();
    const raw = sqliteConnection(s.db);
    if (!raw) throw new Error("no SQLite connection");
    raw.function("in_txn", () => (raw.inTransaction ? 1 : 0));
    const inTxn = hotSelect<{ t: number }>({ sqlite: "select in_txn() as t", postgres: "select 0 as t" });
    const echo = hotSelect<{ v: number }>({ sqlite: "select ? as v", postgres: "select $1 as v" });
    return { s, raw, inTxn, echo };
  }

  it("runs the SELECTs of one turn in one read transaction, and a lone one on its own", async () => {
    const { s, raw, inTxn } = await probes();
    const together = await Promise.all([
      inTxn(s.db, "sqlite", []),
      inTxn(s.db, "sqlite", []),
      inTxn(s.db, "sqlite", []),
    ]);
    expect(together.map((rows) => rows[0]?.t)).toEqual([1, 1, 1]);
    expect(raw.inTransaction).toBe(false);
    expect((await inTxn(s.db, "sqlite", []))[0]?.t).toBe(0);
    // Unbatched (the statement's default, or one call's choice): at once, on its own.
    const alone = hotSelect<{ t: number }>(
      { sqlite: "select in_txn() as t", postgres: "select 0 as t" },
      { batched: false },
    );
    const mixed = await Promise.all([
      alone(s.db, "sqlite", []),
      inTxn(s.db, "sqlite", [], false),
      inTxn(s.db, "sqlite", []),
    ]);
    expect(mixed.map((rows) => rows[0]?.t)).toEqual([0, 0, 0]);
  });

  it("fails one SELECT of a batch alone, and leaves no transaction open", async () => {
    const { s, raw, echo } = await probes();
    const [a, bad, b] = await Promise.allSettled([
      echo(s.db, "sqlite", [1]),
      echo(s.db, "sqlite", [1, 2]),
      echo(s.db, "sqlite", [3]),
    ]);
    expect(a).toEqual({ status: "fulfilled", value: [{ v: 1 }] });
    expect(bad.status).toBe("rejected");
    expect(b).toEqual({ status: "fulfilled", value: [{ v: 3 }] });
    expect(raw.inTransaction).toBe(false);
    const broken = hotSelect({ sqlite: "select * from no_such_table", postgres: "select 1" });
    await expect(broken(s.db, "sqlite", [])).rejects.toThrow(/no such table/);
  });

  it("lets a SELECT queued before a transaction began wait for it, then read what it committed", async () => {
    const { s } = await probes();
    const reading = s.repos.accounts.acceptedUrls("@a:hs.test");
    const { wait: held, open: release } = latch();
    const { wait: didInsert, open: inserted } = latch();
    // Begun in the same turn as the read was queued: the transaction holds the connection when the batch runs.
    const writing = s.transaction(async (repos) => {
      await repos.accounts.addAcceptedUrls("@a:hs.test", ["https://terms.test/1"], 1);
      inserted();
      await held;
    });
    await didInsert;
    let answer: string[] | undefined;
    void reading.then((urls) => {
      answer = urls;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(answer).toBeUndefined();
    release();
    await writing;
    expect(await reading).toEqual(["https://terms.test/1"]);
  });
});
