import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSeraph, type TestSeraph } from "../support/seraph.js";

let is: TestSeraph;
const DAY = 86_400_000;

beforeAll(async () => {
  // The purge runs every 0.6 s here (hourly by default).
  is = await startSeraph({ admin: { purge_interval_minutes: 0.01 } });
});
afterAll(async () => is?.close());

describe("purge of stale accounts and expired tokens", () => {
  it("deletes old accounts without token or binding, and expired tokens, and nothing else", async () => {
    const db = is.seraph.store.db;
    const now = Date.now();
    const old = now - 100 * DAY;
    // One transaction: the purge runs in the background and must not see the accounts before their
    // token and binding (it would rightly delete them).
    await db.transaction().execute(async (tx) => {
      await tx
        .insertInto("accounts")
        .values([
          { user_id: "@stale:hs.test", created_ts: old },
          { user_id: "@token:hs.test", created_ts: old },
          { user_id: "@bound:hs.test", created_ts: old },
          { user_id: "@recent:hs.test", created_ts: now - DAY },
        ])
        .execute();
      await tx
        .insertInto("accepted_terms")
        .values({ user_id: "@stale:hs.test", url: "https://is.test/tos", accepted_ts: old })
        .execute();
      await tx
        .insertInto("access_tokens")
        .values([
          { token_hash: "live", user_id: "@token:hs.test", created_ts: old, expires_ts: null },
          { token_hash: "expired", user_id: "@recent:hs.test", created_ts: old, expires_ts: now - DAY },
        ])
        .execute();
      await tx
        .insertInto("associations")
        .values({
          medium: "email",
          address: "bound@example.org",
          mxid: "@bound:hs.test",
          ts: old,
          not_before: old,
          not_after: now + DAY,
        })
        .execute();
    });

    const users = async () =>
      (await db.selectFrom("accounts").select("user_id").orderBy("user_id").execute()).map((r) => r.user_id);
    await expect
      .poll(users, { timeout: 20_000 })
      .toEqual(["@bound:hs.test", "@recent:hs.test", "@token:hs.test"]);
    await expect
      .poll(async () => (await db.selectFrom("access_tokens").select("token_hash").execute()).length, {
        timeout: 20_000,
      })
      .toBe(1);
    expect(await db.selectFrom("accepted_terms").selectAll().execute()).toEqual([]);
    expect(
      (await db.selectFrom("access_tokens").select("token_hash").execute()).map((r) => r.token_hash),
    ).toEqual(["live"]);
  });
});
