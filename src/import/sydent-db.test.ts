import BetterSqlite3 from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { compareKeys } from "./sydent-db.js";

describe("compareKeys", () => {
  it("orders (medium, address) keys as SQLite's BINARY collation does (UTF-8 bytes), not as JS's <", () => {
    const addresses = [
      "a@x.org",
      "A@x.org",
      "ab@x.org",
      "a",
      "",
      "é@x.org",
      "\u{ff21}@x.org", // FULLWIDTH A (U+FF21): before the supplementary planes in UTF-8, after them in UTF-16
      "\u{1f600}@x.org", // an emoji (a surrogate pair in UTF-16)
      "\u{e000}",
      "\u{ffff}",
      "\u{10000}",
      "z\u{1f600}",
      "z\u{ff21}",
      "zz",
    ];
    const keys = ["email", "msisdn"].flatMap((m) => addresses.map((a) => [m, a] as const));
    const db = new BetterSqlite3(":memory:");
    db.exec("create table t (medium text, address text)");
    const insert = db.prepare("insert into t values (?, ?)");
    for (const [m, a] of keys) insert.run(m, a);
    const sqlite = db.prepare("select medium, address from t order by medium, address").raw(true).all();
    db.close();
    const sorted = [...keys].sort((x, y) => compareKeys(x[0], x[1], y[0], y[1]));
    expect(sorted.map((k) => [...k])).toEqual(sqlite);
    // And JavaScript's own order would differ, which is why the merge does not use it.
    const naive = [...keys].sort((x, y) => (x[0] < y[0] || (x[0] === y[0] && x[1] < y[1]) ? -1 : 1));
    expect(naive.map((k) => [...k])).not.toEqual(sqlite);
  });
});
