import { afterEach, describe, expect, it } from "vitest";
import { migrateToLatest, openStore, type Store } from "./database.js";

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

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
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let inserted: () => void = () => undefined;
    const didInsert = new Promise<void>((resolve) => {
      inserted = resolve;
    });
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
