/** Database: reachable, migrated to this version, writable. */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { Migrator, sql } from "kysely";
import type { ResolvedConfig } from "../config/load.js";
import { openStore, type Store } from "../store/database.js";
import { SeraphMigrations } from "../store/migrations.js";
import { errorText, type Report } from "./report.js";

/** Checks the database; returns the open store (for the key checks) or undefined. The caller closes it. */
export async function checkDatabase(cfg: ResolvedConfig, report: Report): Promise<Store | undefined> {
  const g = report.group("database");
  const pg = cfg.database.postgres;
  const where = pg ? `PostgreSQL ${safeUrl(pg.url)}` : `SQLite ${resolve(cfg.database.sqlite.path)}`;
  if (!pg && !existsSync(cfg.database.sqlite.path)) {
    g.warn(
      "reachable",
      `${where} does not exist yet`,
      "seraph serve (or seraph migrate) creates it; check database.sqlite.path if it should exist",
    );
    return undefined;
  }
  let store: Store;
  try {
    store = await openStore(cfg.database);
    await sql`select 1`.execute(store.db);
  } catch (e) {
    g.fail(
      "reachable",
      `${where}: ${errorText(e)}`,
      pg
        ? "start PostgreSQL, or correct database.postgres.url (host, port, user, password, database) and pg_hba.conf"
        : "check that database.sqlite.path is a SQLite file readable by this user",
    );
    return undefined;
  }
  g.pass("reachable", where);

  try {
    const migrator = new Migrator({
      db: store.db,
      provider: new SeraphMigrations(store.dialect),
      migrationTableName: "seraph_migrations",
      migrationLockTableName: "seraph_migrations_lock",
    });
    const known = await migrator.getMigrations();
    const pending = known.filter((m) => m.executedAt === undefined).map((m) => m.name);
    const names = new Set(known.map((m) => m.name));
    const applied = await appliedMigrations(store);
    const unknown = applied.filter((n) => !names.has(n));
    if (unknown.length) {
      g.fail(
        "migrated",
        `the database has steps this version does not know: ${unknown.join(", ")}`,
        "a newer Seraph migrated this database: run that version (downgrades are not supported)",
      );
    } else if (pending.length) {
      g.warn(
        "migrated",
        `${pending.length} step(s) pending: ${pending.join(", ")}`,
        "seraph serve applies them at start; or run seraph migrate now",
      );
    } else {
      g.pass("migrated", `all ${known.length} steps applied`);
    }
  } catch (e) {
    g.fail("migrated", errorText(e), "check the database user's rights to read seraph_migrations");
  }

  try {
    await store.db.transaction().execute(async (trx) => {
      await sql`create table seraph_doctor_probe (x integer)`.execute(trx);
      await sql`insert into seraph_doctor_probe (x) values (1)`.execute(trx);
      throw new Rollback();
    });
  } catch (e) {
    if (e instanceof Rollback) g.pass("writable", "a test write was made and rolled back");
    else
      g.fail(
        "writable",
        errorText(e),
        pg
          ? "grant the database user CREATE and write rights on its schema"
          : `make ${resolve(cfg.database.sqlite.path)} and its folder writable by the user running Seraph`,
      );
  }
  return store;
}

class Rollback extends Error {}

async function appliedMigrations(store: Store): Promise<string[]> {
  try {
    const rows = await sql<{ name: string }>`select name from seraph_migrations`.execute(store.db);
    return rows.rows.map((r) => r.name);
  } catch {
    return [];
  }
}

/** A database URL without its password. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.href;
  } catch {
    return "(unparsable URL)";
  }
}
