import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, Migrator, type SqliteDatabase, SqliteDialect, sql } from "kysely";
import type { Config } from "../config/schema.js";
import type { Logger } from "../core/logger.js";
import type { Dialect } from "./dialect.js";
import { SeraphMigrations } from "./migrations.js";
import { createPostgresDialect, pingPostgres } from "./postgres.js";
import { type Repositories, repositories, type Transact } from "./repositories.js";
import type { Database } from "./schema.js";

/** An open database: the typed query builder plus the dialect it speaks. */
export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** The repositories over the pool (each call its own statement). */
  readonly repos: Repositories;
  /** Runs work in one transaction (a bind writes the association, its hashes and its onbind job together). */
  readonly transaction: Transact;
  /** Whether the database answers a trivial query right now (for `/_seraph/ready`). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** A store over an open Kysely instance. */
export function storeOver(db: Kysely<Database>, dialect: Dialect): Store {
  return {
    db,
    dialect,
    repos: repositories(db, dialect),
    transaction: (work) => db.transaction().execute((tx) => work(repositories(tx, dialect))),
    ping: () => answers(db),
    close: () => db.destroy(),
  };
}

async function answers(db: Kysely<Database>): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}

/** The `database` section of the configuration: PostgreSQL when `postgres` is set, else the SQLite file. */
export type DatabaseOptions = Config["database"];

/**
 * Wraps better-sqlite3 so that each SQL text is prepared once and reused: Kysely's SQLite driver
 * would otherwise prepare a statement on every query.
 */
function cachingSqlite(path: string): SqliteDatabase {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const raw = new BetterSqlite3(path);
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = NORMAL");
  raw.pragma("foreign_keys = ON");
  raw.pragma("busy_timeout = 5000");
  // Reads through the page cache of the OS instead of read() calls: a 1000-hash lookup took 2.8 ms instead of
  // 4.8 ms at 100 000 associations (bench/README.md). Only address space is reserved.
  raw.pragma("mmap_size = 1073741824");
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => raw.close(),
    prepare: (sqlText: string) => {
      let stmt = cache.get(sqlText);
      if (stmt === undefined) {
        stmt = raw.prepare(sqlText);
        if (cache.size > 500) cache.clear();
        cache.set(sqlText, stmt);
      }
      return stmt as unknown as ReturnType<SqliteDatabase["prepare"]>;
    },
  };
}

/**
 * Opens the configured database: PostgreSQL when `postgres` is set (the server must answer), else the SQLite
 * file. Does not migrate.
 */
export async function openStore(opts: DatabaseOptions, log: Logger = NO_LOG): Promise<Store> {
  if (opts.postgres) {
    const pgOpts = opts.postgres;
    const { dialect, pool } = createPostgresDialect(
      {
        url: pgOpts.url,
        poolSize: pgOpts.pool_size,
        statementTimeoutMs: pgOpts.statement_timeout_ms,
        ssl: {
          enabled: pgOpts.ssl.enabled,
          verifyCertificates: pgOpts.ssl.verify_certificates,
          ...(pgOpts.ssl.ca_path ? { caPath: pgOpts.ssl.ca_path } : {}),
        },
      },
      log,
    );
    const db = new Kysely<Database>({ dialect });
    try {
      await pingPostgres(pool);
    } catch (e) {
      await db.destroy();
      throw new Error(`cannot reach PostgreSQL (database.postgres.url): ${(e as Error).message}`);
    }
    return storeOver(db, "postgres");
  }
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: cachingSqlite(opts.sqlite.path) }),
  });
  return storeOver(db, "sqlite");
}

const NO_LOG: Logger = { info() {}, warn() {}, error() {}, debug() {} };

/** Applies every pending migration; returns the names applied. Throws with the failing step's name. */
export async function migrateToLatest(store: Store): Promise<string[]> {
  const migrator = new Migrator({
    db: store.db,
    provider: new SeraphMigrations(store.dialect),
    migrationTableName: "seraph_migrations",
    migrationLockTableName: "seraph_migrations_lock",
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === "Error");
  if (error) {
    const step = failed ? ` (step ${failed.migrationName})` : "";
    throw new Error(`database migration failed${step}: ${(error as Error).message ?? String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
