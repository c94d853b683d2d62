import { rmSync } from "node:fs";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { SydentDb } from "../../src/import/sydent-db.js";
import { copyFixture } from "./support.js";

const copy = copyFixture();
afterAll(() => rmSync(join(copy, ".."), { recursive: true, force: true }));

/** What the importer read before it merged two cursors: one join, sorted by SQLite. */
const JOINED = `select g.id, g.medium, g.address, g.ts,
    case when l.id is not null and l.mxid is null then coalesce(l.ts, 0) end as tombstoneTs
  from global_threepid_associations g
  left join local_threepid_associations l on l.medium = g.medium and l.address = g.address
  where (g.medium, g.address) > (?, ?)
  order by g.medium, g.address, g.ts desc, g.id desc`;

describe("SydentDb.globalGroups", () => {
  // The fixture has no tombstone next to a global row (sydent deletes those it made); peers' rows and
  // rebinds do leave some. Add every case: rebinds in any id order, tombstones older and newer than the
  // rows, with and without ts, non-ASCII and astral addresses (UTF-8 order), and a tombstone with no rows.
  const raw = new BetterSqlite3(join(copy, "sydent.db"));
  const global = raw.prepare(
    `insert into global_threepid_associations (medium, address, mxid, ts, notBefore, notAfter, originServer, originId, sgAssoc)
     values (?, ?, '@u:hs.example', ?, 0, 9999999999999, 'peer.example', ?, '{}')`,
  );
  const local = raw.prepare(
    "insert or replace into local_threepid_associations (medium, address, mxid, ts, notBefore, notAfter) values (?, ?, null, ?, null, null)",
  );
  let origin = 1000;
  const cases: Array<[string, number[], number | null | undefined]> = [
    ["rebound@example.org", [300, 100, 200], undefined],
    ["unbound.later@example.org", [100, 200], 250],
    ["unbound.between@example.org", [100, 300], 200],
    ["tombstone.without.ts@example.org", [100], null],
    ["\u{ff21}wide@example.org", [100], 150],
    ["\u{1f600}@example.org", [100, 100], 50],
    ["zz.only.tombstone@example.org", [], 100],
  ];
  for (const [address, stamps, tomb] of cases) {
    for (const ts of stamps) global.run("email", address, ts, origin++);
    if (tomb !== undefined) local.run("email", address, tomb);
  }
  const reference = (after: [string, string]) =>
    raw.prepare(JOINED).all(...after) as Array<{
      id: number;
      medium: string;
      address: string;
      ts: number;
      tombstoneTs: number | null;
    }>;
  const expected = reference(["", ""]);
  raw.close();

  it("gives the rows of the former join, in its order, grouped by address", () => {
    const db = SydentDb.open(join(copy, "sydent.db"), { quickCheck: false });
    try {
      const groups = [...db.globalGroups(["", ""])];
      const rows = groups.flat();
      expect(
        rows.map((r) => ({
          id: r.id,
          medium: r.medium,
          address: r.address,
          ts: r.ts,
          tombstoneTs: r.tombstoneTs,
        })),
      ).toEqual(expected);
      for (const g of groups) expect(new Set(g.map((r) => `${r.medium} ${r.address}`)).size).toBe(1);
      expect(new Set(groups.map((g) => `${g[0]!.medium} ${g[0]!.address}`)).size).toBe(groups.length);
      expect(rows.filter((r) => r.tombstoneTs !== null).length).toBeGreaterThanOrEqual(7);
    } finally {
      db.close();
    }
  });

  it("resumes after a cursor exactly where the former query did", () => {
    const db = SydentDb.open(join(copy, "sydent.db"), { quickCheck: false });
    try {
      for (const i of [0, 3, Math.floor(expected.length / 2), expected.length - 2]) {
        const after: [string, string] = [expected[i]!.medium, expected[i]!.address];
        const rest = expected.filter(
          (r) =>
            Buffer.compare(
              Buffer.from(`${r.medium}\u0000${r.address}`),
              Buffer.from(`${after[0]}\u0000${after[1]}`),
            ) > 0,
        );
        const got = [...db.globalGroups(after)].flat().map((r) => r.id);
        expect(got).toEqual(rest.map((r) => r.id));
      }
    } finally {
      db.close();
    }
  });
});
