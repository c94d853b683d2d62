/**
 * In-process timing of the v2 lookup query as Seraph writes it against alternative formulations, on a
 * freshly seeded database (no HTTP): tells whether the database side of a lookup has room to improve.
 *
 *   npx tsx bench/lookup-variants.ts --backend sqlite|postgres --associations 100000
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CompiledQuery, type Kysely, sql } from "kysely";
import { resolveConfig } from "../src/config/load.js";
import { KyselyHashRepository } from "../src/store/association-hashes.js";
import { openStore } from "../src/store/database.js";
import type { Database } from "../src/store/schema.js";
import { lookupHash } from "../src/threepid/normalise.js";
import { createPostgresCluster } from "./postgres.js";
import { BENCH_MEDIUM, benchAddress, seedDatabase } from "./seed.js";

type Variant = (db: Kysely<Database>, pepperId: number, hashes: string[]) => Promise<number>;

const rowsOf = async (db: Kysely<Database>, q: CompiledQuery): Promise<number> =>
  (await db.executeQuery(q)).rows.length;

/** Sets connection pragmas once per benchmark variant (the first call of a run of calls). */
let applied = "";
async function pragmas(db: Kysely<Database>, ...settings: string[]): Promise<void> {
  const key = settings.join(";");
  if (applied === key) return;
  applied = key;
  for (const p of settings) await db.executeQuery(CompiledQuery.raw(`pragma ${p}`));
}

const seraphSqlite = (db: Kysely<Database>, p: number, h: string[]) =>
  new KyselyHashRepository(db, "sqlite").lookup(p, h).then((rows) => rows.length);

/** Seraph's connection settings (src/store/database.ts): 2 MiB page cache, 1 GiB memory-mapped. */
const DEFAULTS = ["cache_size = -2000", "mmap_size = 1073741824"];

const SQLITE: Record<string, Variant> = {
  "in (select value from json_each(?)) + join [Seraph]": async (db, p, h) => {
    await pragmas(db, ...DEFAULTS);
    return seraphSqlite(db, p, h);
  },
  "[Seraph] without mmap (mmap_size = 0, as before 1634cb9)": async (db, p, h) => {
    await pragmas(db, "cache_size = -2000", "mmap_size = 0");
    return seraphSqlite(db, p, h);
  },
  "[Seraph] without mmap, cache_size = -65536 (64 MiB)": async (db, p, h) => {
    await pragmas(db, "cache_size = -65536", "mmap_size = 0");
    return seraphSqlite(db, p, h);
  },
  "in (?, ?, …) + join": async (db, p, h) => {
    await pragmas(db, ...DEFAULTS);
    return rowsOf(
      db,
      CompiledQuery.raw(
        `select h.hash, a.mxid from association_hashes h join associations a on a.id = h.association_id
         where h.pepper_id = ? and h.hash in (${h.map(() => "?").join(",")})`,
        [p, ...h],
      ),
    );
  },
  "json_each, no join (hash → association_id)": async (db, p, h) => {
    await pragmas(db, ...DEFAULTS);
    return rowsOf(
      db,
      CompiledQuery.raw(
        "select h.hash, h.association_id from association_hashes h where h.pepper_id = ? and h.hash in (select value from json_each(?))",
        [p, JSON.stringify(h)],
      ),
    );
  },
};

const POSTGRES: Record<string, Variant> = {
  "in (select unnest($2::text[])) + join [Seraph]": async (db, p, h) =>
    (await new KyselyHashRepository(db, "postgres").lookup(p, h)).length,
  "= any($2::text[]) + join": async (db, p, h) =>
    (
      await sql`select h.hash, a.mxid from association_hashes h join associations a on a.id = h.association_id
        where h.pepper_id = ${p} and h.hash = any(${sql.val(h)}::text[])`.execute(db)
    ).rows.length,
  "unnest, no join (hash → association_id)": async (db, p, h) =>
    (
      await sql`select h.hash, h.association_id from association_hashes h
        where h.pepper_id = ${p} and h.hash in (select unnest(${sql.val(h)}::text[]))`.execute(db)
    ).rows.length,
  "= any, no join": async (db, p, h) =>
    (
      await sql`select h.hash, h.association_id from association_hashes h
        where h.pepper_id = ${p} and h.hash = any(${sql.val(h)}::text[])`.execute(db)
    ).rows.length,
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backend: { type: "string", default: "sqlite" },
      associations: { type: "string", default: "100000" },
      runs: { type: "string", default: "40" },
    },
  });
  const n = Number(values.associations);
  const runs = Number(values.runs);
  const dir = await mkdtemp(join(tmpdir(), "seraph-bench-"));
  const cluster = values.backend === "postgres" ? await createPostgresCluster() : undefined;
  try {
    const database = cluster
      ? { postgres: { url: await cluster.createDatabase() } }
      : { sqlite: { path: join(dir, "seraph.db") } };
    const cfg = resolveConfig({ database, signing_key_path: join(dir, "k") });
    const seed = await seedDatabase(cfg.database, { associations: n });
    const store = await openStore(cfg.database);
    try {
      let x = 12345;
      const pick = () => {
        x = (x * 1103515245 + 12345) % 2147483648;
        return x % n;
      };
      const bodies = (size: number) =>
        Array.from({ length: runs + 5 }, () =>
          Array.from({ length: size }, () => lookupHash(benchAddress(pick()), BENCH_MEDIUM, seed.pepper)),
        );
      const variants = store.dialect === "sqlite" ? SQLITE : POSTGRES;
      process.stdout.write(
        `| variant (${store.dialect}, ${n} associations) | 100 hashes ms | 1000 hashes ms |\n|---|---|---|\n`,
      );
      for (const [name, run] of Object.entries(variants)) {
        const cells: string[] = [];
        for (const size of [100, 1000]) {
          const times: number[] = [];
          for (const [i, hashes] of bodies(size).entries()) {
            const t0 = performance.now();
            const found = await run(store.db, seed.pepperId, hashes);
            if (i >= 5) times.push(performance.now() - t0);
            // Random picks may repeat; every distinct hash must be found.
            if (found !== new Set(hashes).size) throw new Error(`${name}: ${found} of ${size}`);
          }
          cells.push((times.reduce((s, t) => s + t, 0) / times.length).toFixed(2));
        }
        process.stdout.write(`| ${name} | ${cells.join(" | ")} |\n`);
      }
    } finally {
      await store.close();
    }
  } finally {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
