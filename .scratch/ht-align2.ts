import { createHash } from "node:crypto";
const n = Number(process.argv[2] ?? 1e6);
const hashes: string[] = [];
for (let i = 0; i < n; i++) hashes.push(createHash("sha256").update(`a${i}`).digest("base64url"));
const offs = (process.env.OFFS ?? "0,48").split(",").map(Number);
const tables = [] as any[];
for (const off of offs) {
  process.env.OFF = String(off);
  const { HashTable } = await import(`./hash-table-off.ts?off=${off}`);
  const t = new HashTable(n);
  for (let i = 0; i < n; i++) t.set(hashes[i]!, `@user${i}:example.org`);
  t.trim();
  tables.push(t);
}
const texts: string[] = [];
for (let b = 0; b < 50; b++) {
  const s = new Set<number>();
  while (s.size < 1000) s.add(Math.floor(Math.random() * n));
  texts.push(JSON.stringify([...s].map((i) => hashes[i]!)));
}
const times = offs.map(() => [] as number[]);
const sweep = new Int32Array(8 << 20);
for (let r = 0; r < 4000; r++) {
  const k = r % offs.length;
  const body = JSON.parse(texts[(r >> 2) % 50]!) as string[];
  const t0 = process.hrtime.bigint();
  tables[k].getMany(body);
  times[k]!.push(Number(process.hrtime.bigint() - t0) / 1000);
}
offs.forEach((o, k) => { const t = times[k]!.sort((a, b) => a - b); console.log(`off ${o} median ${t[t.length >> 1]!.toFixed(0)} p10 ${t[t.length / 10 | 0]!.toFixed(0)}`); });
