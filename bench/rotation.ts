/**
 * Cost of a pepper rotation: seeds N associations, starts a rotation and runs
 * `LookupService.maintain()` the way the background task does (at once after a full batch, otherwise
 * again after a pause) until the new pepper is current. Each call runs on the server's event loop, so
 * its duration is how long lookups stall (SQLite) or wait for a pool connection (PostgreSQL).
 *
 * The database settings are Seraph's defaults (PostgreSQL: 10 s statement timeout). A call that fails
 * ends the measurement, unless --retry: then, like the background task, it tries again 10 s later.
 *
 *   npx tsx bench/rotation.ts --backend sqlite|postgres --associations 100000 [--batch 1000]
 *     [--settle-seconds 30] [--recent-binds] [--max-seconds 600] [--retry]
 *
 * --recent-binds seeds every association as bound just now, so all of them fall into the settle
 * window that the rotation hashes in one pass before switching (a bulk import right before a rotation).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { sql } from "kysely";
import { resolveConfig } from "../src/config/load.js";
import { LookupService } from "../src/services/lookup.js";
import { openStore, type Store } from "../src/store/database.js";
import { createPostgresCluster } from "./postgres.js";
import { seedDatabase } from "./seed.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** PostgreSQL: how often autovacuum has analysed association_hashes (its statistics drive the plans). */
async function autoAnalyzed(store: Store): Promise<string> {
  if (store.dialect !== "postgres") return "";
  const { rows } = await sql<{ n: number }>`
    select autoanalyze_count as n from pg_stat_user_tables where relname = 'association_hashes'`.execute(
    store.db,
  );
  return `autovacuum analysed association_hashes ${rows[0]?.n ?? 0}×`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backend: { type: "string", default: "sqlite" },
      associations: { type: "string", default: "100000" },
      batch: { type: "string", default: "1000" },
      "settle-seconds": { type: "string", default: "30" },
      "recent-binds": { type: "boolean", default: false },
      "max-seconds": { type: "string", default: "600" },
      retry: { type: "boolean", default: false },
    },
  });
  const n = Number(values.associations);
  const batch = Number(values.batch);
  const settleMs = Number(values["settle-seconds"]) * 1000;
  const maxMs = Number(values["max-seconds"]) * 1000;
  const dir = await mkdtemp(join(tmpdir(), "seraph-bench-"));
  const cluster = values.backend === "postgres" ? await createPostgresCluster() : undefined;
  try {
    const database = cluster
      ? { postgres: { url: await cluster.createDatabase() } }
      : { sqlite: { path: join(dir, "seraph.db") } };
    const cfg = resolveConfig({ database, signing_key_path: join(dir, "k") });
    await seedDatabase(cfg.database, {
      associations: n,
      ...(values["recent-binds"] ? { bindAgeMs: 0 } : {}),
    });
    const store = await openStore(cfg.database);
    try {
      const peppers = store.repos.peppers;
      const lookup = new LookupService(
        {
          maxAddresses: cfg.lookup.max_addresses,
          previousPepperGraceMs: cfg.lookup.previous_pepper_grace_seconds * 1000,
          rotationIntervalMs: 0,
          rehashBatchSize: batch,
          rotationSettleMs: settleMs,
          memoryIndex: true,
        },
        store.repos,
        store.transaction,
      );
      await lookup.init();
      const before = (await peppers.live()).find((p) => p.state === "current")!.id;
      await lookup.rotate();
      const calls: number[] = [];
      let failures = 0;
      let lastError = "";
      let rotated = false;
      const started = performance.now();
      while (!rotated && performance.now() - started < maxMs) {
        const t0 = performance.now();
        let touched = -1;
        try {
          touched = await lookup.maintain();
        } catch (err) {
          failures++;
          lastError = (err as Error).message.slice(0, 100);
        }
        calls.push(performance.now() - t0);
        rotated = (await peppers.live()).find((p) => p.state === "current")!.id !== before;
        if (touched === -1) {
          if (!values.retry) break;
          await sleep(10_000); // the background task's interval
        } else if (touched < batch && !rotated) {
          await sleep(250); // waiting for the settle time to pass
        }
      }
      const total = performance.now() - started;
      const failed = failures > 0 ? `${failures} failed call(s): ${lastError}` : "";
      const outcome = [
        rotated ? "rotated" : `not rotated after ${(total / 1000).toFixed(0)} s`,
        failed,
        await autoAnalyzed(store),
      ]
        .filter(Boolean)
        .join("; ");
      const busy = calls.reduce((s, x) => s + x, 0);
      const longest = Math.max(...calls);
      process.stdout.write(
        `| ${store.dialect} | ${n} | ${batch} | ${settleMs / 1000} | ${values["recent-binds"] ? "yes" : "no"} | ` +
          `${outcome} | ${calls.length} | ${(total / 1000).toFixed(1)} | ${(busy / 1000).toFixed(2)} | ` +
          `${longest.toFixed(1)} |\n`,
      );
    } finally {
      await store.close();
    }
  } finally {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

process.stdout.write(
  "| backend | associations | batch | settle s | recent binds | outcome | maintain() calls | wall s | in maintain() s | longest call ms |\n" +
    "|---|---|---|---|---|---|---|---|---|---|\n",
);
main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
