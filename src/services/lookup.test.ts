import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateToLatest, openStore, type Store } from "../store/database.js";
import { lookupHash } from "../threepid/normalise.js";
import { LookupService } from "./lookup.js";

describe("pepper rotation", () => {
  let store: Store;
  let clock = 1_000_000;
  let lookup: LookupService;
  const address = (i: number) => `user${i}@example.org`;

  beforeAll(async () => {
    store = await openStore({ sqlite: { path: ":memory:" } });
    await migrateToLatest(store);
    lookup = new LookupService(
      {
        maxAddresses: 10_000,
        previousPepperGraceMs: 3_600_000,
        rotationIntervalMs: 0,
        rehashBatchSize: 1000,
        rotationSettleMs: 30_000,
        memoryIndex: true,
      },
      store.repos,
      store.transaction,
      () => clock,
    );
    await lookup.init();
    const rows = Array.from({ length: 2500 }, (_, i) => ({
      id: i + 1,
      medium: "email",
      address: address(i + 1),
      mxid: `@u${i + 1}:hs.test`,
      ts: clock,
      not_before: clock,
      not_after: clock + 1e9,
    }));
    for (let i = 0; i < rows.length; i += 500) {
      await store.db
        .insertInto("associations")
        .values(rows.slice(i, i + 500))
        .execute();
    }
  });
  afterAll(async () => store?.close());

  const find = async (i: number) => {
    const { lookup_pepper } = await lookup.hashDetails();
    const hash = lookupHash(address(i), "email", lookup_pepper);
    const found = await lookup.lookup([hash], "sha256", lookup_pepper);
    // From the in-memory index the answer comes as JSON members.
    const pairs =
      "members" in found
        ? Object.entries(JSON.parse(`{${found.members}}`) as Record<string, string>).map(([h, mxid]) => ({
            hash: h,
            mxid,
          }))
        : found;
    return pairs.find((m) => m.hash === hash)?.mxid;
  };

  it("hashes in id-ordered batches, waits for the settle time, and catches a bind that raced the cursor", async () => {
    const before = (await lookup.hashDetails()).lookup_pepper;
    // A bind in flight while the rotation starts: its row (id 10) becomes visible only after the cursor passed it.
    await store.db.deleteFrom("associations").where("id", "=", 10).execute();
    await lookup.rotate();
    expect(await lookup.maintain()).toBe(1000);
    expect(await lookup.maintain()).toBe(1000);
    clock += 1000;
    await store.db
      .insertInto("associations")
      .values({
        id: 10,
        medium: "email",
        address: address(10),
        mxid: "@late:hs.test",
        ts: clock,
        not_before: clock,
        not_after: clock + 1e9,
      })
      .execute();
    expect(await lookup.maintain()).toBe(499);
    // Everything is hashed, but the pepper is younger than the settle time: no switch yet.
    expect((await lookup.hashDetails()).lookup_pepper).toBe(before);
    clock += 30_000;
    await lookup.maintain();
    expect((await lookup.hashDetails()).lookup_pepper).not.toBe(before);
    expect(await find(10)).toBe("@late:hs.test");
    expect(await find(2500)).toBe("@u2500:hs.test");
    expect(await find(1)).toBe("@u1:hs.test");
  });

  it("stores any number of recent binds in one switch (statements are chunked)", async () => {
    const before = (await lookup.hashDetails()).lookup_pepper;
    await lookup.rotate();
    const start = 3000;
    const rows = Array.from({ length: 12_000 }, (_, i) => ({
      medium: "email",
      address: address(start + i),
      mxid: `@r${i}:hs.test`,
      ts: clock,
      not_before: clock,
      not_after: clock + 1e9,
    }));
    for (let i = 0; i < rows.length; i += 2000) {
      await store.db
        .insertInto("associations")
        .values(rows.slice(i, i + 2000))
        .execute();
    }
    clock += 30_000;
    while ((await lookup.maintain()) > 0) {
      /* until switched */
    }
    expect((await lookup.hashDetails()).lookup_pepper).not.toBe(before);
    expect(await find(start + 11_999)).toBe("@r11999:hs.test");
  });
});
