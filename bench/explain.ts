/** `--explain`: the plan of the lookup query on the seeded database, and its cost in-process. */
import BetterSqlite3 from "better-sqlite3";
import { CompiledQuery, Kysely, type LogEvent, SqliteDialect } from "kysely";
import type { ResolvedConfig } from "../src/config/load.js";
import { NO_LOG } from "../src/core/logger.js";
import { KyselyHashRepository } from "../src/store/association-hashes.js";
import { openStore } from "../src/store/database.js";
import { createPostgresDialect } from "../src/store/postgres.js";
import type { Database } from "../src/store/schema.js";
import { type Context, expect, lookupBodies } from "./scenarios.js";

/** PostgreSQL prints bound arrays in full: `'{<100 values>}'::text[]` keeps the plan readable. */
function shortenArrays(line: string): string {
  return line.replace(
    /'\{([^}]*)\}'::text\[\]/g,
    (_m, inner: string) => `'{<${inner.split(",").length} values>}'::text[]`,
  );
}

/** Runs the repository's own lookup query on a logging connection and explains exactly that SQL. */
export async function explain(ctx: Context, cfg: ResolvedConfig): Promise<string> {
  let captured: CompiledQuery | undefined;
  const capture = (e: LogEvent) => {
    captured = e.query;
  };
  const dialect = cfg.database.postgres
    ? createPostgresDialect({ url: cfg.database.postgres.url, poolSize: 2, statementTimeoutMs: 0 }, NO_LOG)
        .dialect
    : new SqliteDialect({ database: new BetterSqlite3(cfg.database.sqlite.path) });
  const db = new Kysely<Database>({ dialect, log: capture });
  const kind = cfg.database.postgres ? "postgres" : "sqlite";
  const out: string[] = [];
  try {
    const repo = new KyselyHashRepository(db, kind);
    const [sample] = lookupBodies(ctx, 100, 1, 7);
    const hashes = JSON.parse(sample!.body).addresses as string[];
    const rows = await repo.lookup(ctx.seed.pepperId, hashes);
    expect(rows.length === 100, `in-process lookup found ${rows.length} of 100`);
    const q = captured!;
    out.push(`lookup query (${kind}), as compiled by KyselyHashRepository.lookup:`);
    out.push(q.sql.replace(/\s+/g, " ").trim());
    const prefix = kind === "sqlite" ? "explain query plan " : "explain ";
    const plan = await db.executeQuery<Record<string, unknown>>(
      CompiledQuery.raw(prefix + q.sql, [...q.parameters]),
    );
    out.push(`${prefix.trim().toUpperCase()} (100 hashes, ${ctx.seed.associations} associations):`);
    if (kind === "sqlite") {
      const depth = new Map<number, number>([[0, 0]]);
      for (const r of plan.rows) {
        const d = (depth.get(Number(r.parent)) ?? 0) + 1;
        depth.set(Number(r.id), d);
        out.push(`${"  ".repeat(d)}${String(r.detail)}`);
      }
    } else {
      for (const r of plan.rows) out.push(`  ${shortenArrays(String(r["QUERY PLAN"]))}`);
      const analyzed = await db.executeQuery<Record<string, unknown>>(
        CompiledQuery.raw(`explain (analyze, costs off, timing off) ${q.sql}`, [...q.parameters]),
      );
      out.push("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF):");
      for (const r of analyzed.rows) out.push(`  ${shortenArrays(String(r["QUERY PLAN"]))}`);
    }

    // In-process cost of the query alone (no HTTP, no JSON), for comparison with latency1000, on a
    // connection opened the way the server opens it (openStore: same pragmas and statement cache).
    const store = await openStore(cfg.database);
    const times: number[] = [];
    try {
      const serverRepo = new KyselyHashRepository(store.db, store.dialect);
      for (const b of lookupBodies(ctx, 1000, 25, 99)) {
        const hs = [...b.expected.keys()];
        const t0 = performance.now();
        const found = await serverRepo.lookup(ctx.seed.pepperId, hs);
        times.push(performance.now() - t0);
        expect(found.length === 1000, "in-process lookup of 1000 hashes finds all");
      }
    } finally {
      await store.close();
    }
    const measured = times.slice(5);
    const mean = measured.reduce((s, t) => s + t, 0) / measured.length;
    out.push(
      `query alone, 1000 hashes: mean ${mean.toFixed(2)} ms over ${measured.length} runs (in-process)`,
    );
  } finally {
    await db.destroy();
  }
  return out.join("\n");
}
