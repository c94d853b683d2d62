/**
 * In-process cost of the in-memory lookup index (src/services/hash-table.ts): its size, how long it takes to
 * build, and a 100-hash `getManyJson` of hashes it holds and of hashes it does not (no HTTP, no database).
 * `--compare FILE` times another version of the module (e.g. `git show REV:src/services/hash-table.ts >
 * /tmp/old-hash-table.ts`) in alternating rounds with this one.
 *
 *   npx tsx bench/hash-table.ts --associations 1000000 [--rounds 6] [--compare /tmp/old-hash-table.ts]
 */
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { HashTable } from "../src/services/hash-table.js";

interface Table {
  set(hash: string, mxid: string): void;
  trim(): void;
  getManyJson(hashes: readonly string[]): { count: number };
  readonly bytes: number;
}

const { values } = parseArgs({
  options: {
    associations: { type: "string", default: "1000000" },
    rounds: { type: "string", default: "6" },
    compare: { type: "string" },
  },
});
const n = Number(values.associations);
const rounds = Number(values.rounds);
const hash = (s: string) => createHash("sha256").update(s).digest("base64url");
const held = Array.from({ length: n }, (_, i) => hash(`user${i}@example.org email pepper`));
const absent = Array.from({ length: 100_000 }, (_, i) => hash(`nobody${i}@example.org email pepper`));
const QUERIES = 5000;
const pick = (from: readonly string[]) =>
  Array.from({ length: QUERIES }, () =>
    Array.from({ length: 100 }, () => from[Math.floor(Math.random() * from.length)]!),
  );
const hits = pick(held);
const misses = pick(absent);

const versions: Array<[string, new (expected: number) => Table]> = [["this tree", HashTable]];
if (values.compare !== undefined) {
  const mod = (await import(resolve(values.compare))) as { HashTable: new (expected: number) => Table };
  versions.unshift([values.compare, mod.HashTable]);
}
const tables = versions.map(([name, Ctor]) => {
  const started = performance.now();
  const t = new Ctor(n);
  for (let i = 0; i < n; i++) t.set(held[i]!, `@user${i}:hs.example`);
  t.trim();
  const ms = performance.now() - started;
  console.log(`${name}: ${(t.bytes / 1048576).toFixed(1)} MiB for ${n} hashes, built in ${ms.toFixed(0)} ms`);
  return { name, t, hit: [] as number[], miss: [] as number[] };
});
const perQuery = (t: Table, queries: string[][]) => {
  const started = performance.now();
  let found = 0;
  for (const q of queries) found += t.getManyJson(q).count;
  if (found < 0) console.log(found);
  return ((performance.now() - started) / queries.length) * 1000;
};
for (let r = 0; r < rounds; r++) {
  for (const x of tables) {
    x.hit.push(perQuery(x.t, hits));
    x.miss.push(perQuery(x.t, misses));
  }
}
const fmt = (v: number[]) =>
  `best ${Math.min(...v).toFixed(1)} µs (rounds: ${v.map((x) => x.toFixed(1)).join(" ")})`;
for (const x of tables) console.log(`${x.name}: 100 held ${fmt(x.hit)}; 100 absent ${fmt(x.miss)}`);
