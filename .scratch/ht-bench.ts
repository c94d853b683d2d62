import { createHash, randomBytes } from "node:crypto";
import { HashTable } from "../src/services/hash-table.ts";
const n = Number(process.argv[2] ?? 1e6);
const hashes: string[] = [];
for (let i = 0; i < n; i++) hashes.push(createHash("sha256").update(`a${i}`).digest("base64url"));
const t = new HashTable(n);
for (let i = 0; i < n; i++) t.set(hashes[i]!, `@user${i}:example.org`);
t.trim();
// 50 bodies of 1000 distinct random existing hashes (like the bench)
const bodies: string[][] = [];
for (let b = 0; b < 50; b++) {
  const s = new Set<number>();
  while (s.size < 1000) s.add(Math.floor(Math.random() * n));
  bodies.push([...s].map((i) => hashes[i]!));
}
const texts = bodies.map((b) => JSON.stringify(b));
const times: number[] = [];
let found = 0;
for (let r = 0; r < 3000; r++) {
  const body = JSON.parse(texts[r % 50]!) as string[];
  const t0 = process.hrtime.bigint();
  found += t.getMany(body).length;
  times.push(Number(process.hrtime.bigint() - t0) / 1000);
}
times.sort((a, b) => a - b);
const sm = (await import("node:fs")).readFileSync("/proc/self/smaps_rollup","utf8").match(/AnonHugePages:\s+(\d+)/)?.[1];
console.log(n, "thp kB", sm, "median µs", times[1500]!.toFixed(0), "p10", times[300]!.toFixed(0), found / 3000, process.env.GLIBC_TUNABLES ?? "");
