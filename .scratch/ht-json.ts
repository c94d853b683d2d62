import { createHash } from "node:crypto";
import { mappingsJson } from "../src/api/lookup.ts";
const n = Number(process.argv[2] ?? 1e6);
const hashes: string[] = [];
for (let i = 0; i < n; i++) hashes.push(createHash("sha256").update(`a${i}`).digest("base64url"));
const { HashTable } = await import("./ht-j.ts");
const t = new HashTable(n);
for (let i = 0; i < n; i++) t.set(hashes[i]!, `@user${i}:hs.example`);
t.trim();
const texts: string[] = [];
for (let b = 0; b < 50; b++) { const s = new Set<number>(); while (s.size < 1000) s.add(Math.floor(Math.random() * n)); texts.push(JSON.stringify([...s].map((i) => hashes[i]!))); }
const ways = {
  strings: (body: string[]) => Buffer.from(mappingsJson(t.getMany(body))),
  bytes: (body: string[]) => { const r = t.getManyJson(body); return Buffer.concat([Buffer.from('{"mappings":{'), r.json, Buffer.from("}}")]); },
};
// same output?
const b0 = JSON.parse(texts[0]!);
if (!ways.strings(b0).equals(ways.bytes(b0))) throw new Error("differ");
const names = Object.keys(ways) as Array<keyof typeof ways>;
const times = names.map(() => [] as number[]);
for (let r = 0; r < 4000; r++) {
  const k = r % 2;
  const body = JSON.parse(texts[(r >> 1) % 50]!) as string[];
  const t0 = process.hrtime.bigint();
  ways[names[k]!](body);
  times[k]!.push(Number(process.hrtime.bigint() - t0) / 1000);
}
names.forEach((o, k) => { const x = times[k]!.sort((a, b) => a - b); console.log(n, `${o} median ${x[x.length >> 1]!.toFixed(0)} p10 ${x[x.length / 10 | 0]!.toFixed(0)}`); });
