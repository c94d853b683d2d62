import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sha256Base64Url } from "../crypto/hash.js";
import { HashTable } from "./hash-table.js";

/** mxids of every kind the table must give back exactly: ASCII, other scripts, empty, long, too long for it. */
const MXIDS = [
  "@a:hs",
  "@bé:hs",
  "@用户:例子.test",
  "",
  `@${"x".repeat(300)}:hs`,
  `@${"é".repeat(40_000)}:hs`,
  "@😀:hs",
  `@${"x".repeat(27)}`, // 28 bytes: seven words
  `@${"x".repeat(28)}`, // 29: eight words, one byte of the last
  `@${"x".repeat(26)}é`, // 29 bytes, the last character across a word's end
  `@${"x".repeat(8189)}`, // 8190 bytes: the most an entry holds whole
  `@${"x".repeat(8190)}`, // one more: kept in the map
  `@${"x".repeat(8190)}:hs`, // a localpart of 8190 bytes: the most an entry holds with a server's number
  `@${"x".repeat(8191)}:hs`,
  "@:hs", // an empty localpart
  "@a:", // no server name: kept whole
  "@a:b:8448", // the server name is everything after the first colon
  '@a"b\\c\u0001:hs', // a localpart that JSON escapes
  '@a:"quoted"', // a server name that JSON would escape: kept whole
  "a:hs", // not an mxid: kept whole
];

const hash = (i: number) => sha256Base64Url(`address${i} email pepper`);
/** Hashes in four families that share their first ten characters: each family starts at one row (long runs). */
const PREFIXES = ["AAAAAAAAAA", "__________", "n4bQgYhMfW", "-9-9-9-9-9"];
const clustered = (i: number) => `${PREFIXES[i % 4]}${hash(i).slice(10)}`;

/** What the lookup route writes for `getMany`'s answer, to compare `getManyJson` with. */
const asJson = (pairs: ReadonlyArray<{ hash: string; mxid: string }>) =>
  pairs.map((p) => `${JSON.stringify(p.hash)}:${JSON.stringify(p.mxid)}`).join(",");

describe("HashTable", () => {
  it("writes what getMany finds as JSON members, byte for byte, for any mxids and any asked hashes", () => {
    // mxids that need escaping (quotes, backslashes, control characters) beside the ones of every length.
    const mxids = [
      ...MXIDS,
      '@"q":hs',
      "@a\\b:hs",
      "@tab\there:hs",
      "@nul\u0000:hs",
      `@${'"'.repeat(40)}:hs`,
    ];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(60), fc.nat(mxids.length - 1), fc.boolean()), { maxLength: 80 }),
        fc.array(fc.nat(70), { maxLength: 120 }),
        (sets, asked) => {
          const t = new HashTable();
          // Odd keys (not 43 base64url characters, some needing escaping) beside regular ones.
          const key = (i: number) => (i % 7 === 3 ? `odd "${i}"\\` : hash(i));
          for (const [k, m, del] of sets) {
            if (del) t.delete(key(k));
            else t.set(key(k), mxids[m]!);
          }
          const hashes = asked.map(key);
          const json = t.getManyJson(hashes);
          const pairs = t.getMany(hashes);
          expect(json.members.toString()).toBe(asJson(pairs));
          expect(json.count).toBe(pairs.length);
          expect(Object.keys(JSON.parse(`{${json.members}}`))).toHaveLength(pairs.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("finds what was set, takes the latest mxid, forgets what was deleted", () => {
    const t = new HashTable();
    t.set(hash(1), "@a:hs");
    t.set(hash(2), "@b:hs");
    t.set(hash(1), "@c:hs");
    expect(t.get(hash(1))).toBe("@c:hs");
    expect(t.get(hash(2))).toBe("@b:hs");
    expect(t.get(hash(3))).toBeUndefined();
    t.delete(hash(1));
    t.delete(hash(3));
    expect(t.get(hash(1))).toBeUndefined();
    expect(t.size).toBe(1);
  });

  it("replaces a long mxid with a short one whose room comes from a repack", () => {
    const t = new HashTable();
    t.set(hash(1), "€".repeat(21_845));
    t.set(hash(1), "@x:example.org");
    t.set(hash(2), "@y:example.org");
    expect([t.get(hash(1)), t.get(hash(2))]).toEqual(["@x:example.org", "@y:example.org"]);
  });

  it("tells apart hashes that differ only in their last character", () => {
    const t = new HashTable();
    const h = hash(7);
    const other = `${h.slice(0, 42)}${h[42] === "A" ? "B" : "A"}`;
    t.set(h, "@a:hs");
    expect(t.get(other)).toBeUndefined();
    t.set(other, "@b:hs");
    expect([t.get(h), t.get(other)]).toEqual(["@a:hs", "@b:hs"]);
  });

  it("keeps strings that are not 43 base64url characters exactly", () => {
    const t = new HashTable();
    for (const odd of ["", "short", `${hash(1)}=`, `${hash(1).slice(0, 42)}+`, `${hash(1).slice(0, 42)}é`]) {
      t.set(odd, `@${odd.length}:hs`);
      expect(t.get(odd)).toBe(`@${odd.length}:hs`);
    }
    expect(t.get(hash(1))).toBeUndefined();
    expect(t.getMany(["short", hash(1), "", "short"])).toEqual([
      { hash: "short", mxid: "@5:hs" },
      { hash: "", mxid: "@0:hs" },
    ]);
    t.delete("short");
    expect(t.get("short")).toBeUndefined();
  });

  it("agrees with a Map over any sequence of sets and deletes (sized ahead or growing, reusing freed entries)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 3000 }), fc.constantFrom(...MXIDS)), {
          maxLength: 6000,
        }),
        fc.constantFrom(0, 10, 3000, 20_000),
        fc.constantFrom(hash, clustered),
        (ops, sizedFor, keyOf) => {
          const t = new HashTable(sizedFor);
          const m = new Map<string, string>();
          for (const [isSet, key, value] of ops) {
            if (isSet) {
              t.set(keyOf(key), value);
              m.set(keyOf(key), value);
            } else {
              t.delete(keyOf(key));
              m.delete(keyOf(key));
            }
          }
          expect(t.size).toBe(m.size);
          const all = Array.from({ length: 3001 }, (_, key) => keyOf(key));
          for (const h of all) expect(t.get(h)).toBe(m.get(h));
          // Looked up together (in groups), with odd strings and repeats among them: the same answers, each
          // hash once, in the order first asked.
          const asked = [...all, "short", all[5]!, `${all[6]!.slice(0, 42)}+`, all[3000]!];
          const expected = [...new Set(asked)].flatMap((h) =>
            m.has(h) ? [{ hash: h, mxid: m.get(h)! }] : [],
          );
          expect(t.getMany(asked)).toEqual(expected);
        },
      ),
      { numRuns: 30 },
    );
  });

  it("keeps every hash of long runs that wrap past the last row while rows are deleted in any order", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 699 }), { maxLength: 700 }), (deletes) => {
        // 700 hashes in 1024 rows (no growth), in four runs of 175: at least one run wraps.
        const t = new HashTable(0);
        const m = new Map<string, string>();
        for (let i = 0; i < 700; i++) {
          t.set(clustered(i), `@${i}:hs`);
          m.set(clustered(i), `@${i}:hs`);
        }
        for (const i of deletes) {
          t.delete(clustered(i));
          m.delete(clustered(i));
          expect(t.get(clustered((i + 4) % 700))).toBe(m.get(clustered((i + 4) % 700)));
        }
        for (let i = 0; i < 700; i++) expect(t.get(clustered(i))).toBe(m.get(clustered(i)));
        expect(t.size).toBe(m.size);
      }),
      { numRuns: 30 },
    );
  });

  it("keeps every hash of one run that starts at the first slot while its hashes are deleted in any order", () => {
    // One family (home 0, no wrap): a deleted hash's gap must be filled by the next hash of the same home.
    const one = (i: number) => `${PREFIXES[0]}${hash(i).slice(10)}`;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 59 }), { maxLength: 60 }), (deletes) => {
        const t = new HashTable(0);
        const m = new Map<string, string>();
        for (let i = 0; i < 60; i++) {
          t.set(one(i), `@${i}:hs`);
          m.set(one(i), `@${i}:hs`);
        }
        for (const i of deletes) {
          t.delete(one(i));
          m.delete(one(i));
          for (let j = 0; j < 60; j++) expect(t.get(one(j))).toBe(m.get(one(j)));
        }
      }),
      { numRuns: 30 },
    );
  });

  it("keeps mxids of more server names than it numbers (255), exactly, in JSON too", () => {
    const t = new HashTable();
    const mxid = (i: number) => `@u${i}:server${i % 300}.example`;
    for (let i = 0; i < 900; i++) t.set(hash(i), mxid(i));
    const asked = Array.from({ length: 900 }, (_, i) => hash(i));
    const expected = asked.map((h, i) => ({ hash: h, mxid: mxid(i) }));
    expect(t.getMany(asked)).toEqual(expected);
    expect(t.getManyJson(asked).members.toString()).toBe(asJson(expected));
  });

  it("takes a twenty-fifth more hashes than it was built for before it copies, and then grows by a quarter", () => {
    const t = new HashTable(20_000);
    const built = t.bytes;
    for (let i = 0; i < 20_800; i++) t.set(hash(i), `@${i}:hs`);
    expect(t.bytes).toBe(built);
    for (let i = 20_800; i < 22_000; i++) t.set(hash(i), `@${i}:hs`);
    expect(t.bytes).toBeGreaterThan(built);
    expect(t.bytes).toBeLessThan(built * 1.3);
    for (let i = 0; i < 22_000; i++) expect(t.get(hash(i))).toBe(`@${i}:hs`);
  });

  it("sized from a sample of its mxids, holds them without a copy, and trim keeps that arena", () => {
    const long = (i: number) => `@${"y".repeat(40)}${i}:hs.example`;
    const sample = Array.from({ length: 500 }, (_, i) => long(i * 7));
    const sampled = new HashTable(20_000, sample);
    const unsampled = new HashTable(20_000);
    const built = sampled.bytes;
    const unsampledBuilt = unsampled.bytes;
    for (let i = 0; i < 20_000; i++) {
      sampled.set(hash(i), long(i));
      unsampled.set(hash(i), long(i));
    }
    expect(sampled.bytes).toBe(built);
    // Sized for shorter entries, the other had to grow.
    expect(unsampled.bytes).toBeGreaterThan(unsampledBuilt);
    sampled.trim();
    expect(sampled.bytes).toBe(built);
    for (let i = 0; i < 20_000; i++) expect(sampled.get(hash(i))).toBe(long(i));
    // Short mxids: a smaller arena than the default's (a key and 15 bytes each).
    expect(new HashTable(20_000, ["@u1:hs", "@u22:hs"]).bytes).toBeLessThan(new HashTable(20_000).bytes);
  });

  it("gives back the room of a table sized for more than it holds, keeping every hash", () => {
    const t = new HashTable(50_000);
    for (let i = 0; i < 300; i++) t.set(hash(i), i % 3 ? `@${i}:hs` : `@${"y".repeat(40)}${i}:hs`);
    for (let i = 0; i < 100; i++) t.set(hash(i), `@${i}:again`);
    t.trim();
    for (let i = 0; i < 300; i++) {
      expect(t.get(hash(i))).toBe(i < 100 ? `@${i}:again` : i % 3 ? `@${i}:hs` : `@${"y".repeat(40)}${i}:hs`);
    }
  });
});
