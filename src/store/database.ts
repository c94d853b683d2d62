import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, Migrator, type SqliteDatabase, SqliteDialect, sql } from "kysely";
import type { Config } from "../config/schema.js";
import type { Logger } from "../core/logger.js";
import type { Dialect } from "./dialect.js";
import { SeraphMigrations } from "./migrations.js";
import { ReplicaReader } from "./replicas.js";
import { type Repositories, repositories, type Transact } from "./repositories.js";
import type { Database } from "./schema.js";
import { registerSqliteConnection, sqliteConnection } from "./sqlite-connection.js";

/** An open database: the typed query builder plus the dialect it speaks. */
export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /**
   * Where reads that may be slightly stale go (lookups): a healthy PostgreSQL read replica when
   * `database.postgres.read_replicas` has one, else `db`. Never for writes, nor for reads that must see a
   * write just made.
   */
  reader(): Kysely<Database>;
  /** The repositories over the pool (each call its own statement). */
  readonly repos: Repositories;
  /** Runs work in one transaction (a bind writes the association, its hashes and its onbind job together). */
  readonly transaction: Transact;
  /** Whether the database answers a trivial query right now (for `/_seraph/ready`). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** A store over an open Kysely instance. */
export function storeOver(db: Kysely<Database>, dialect: Dialect, reader?: () => Kysely<Database>): Store {
  return {
    db,
    dialect,
    reader: reader ?? (() => db),
    repos: repositories(db, dialect),
    transaction: (work) =>
      db.transaction().execute((tx) => {
        // The transaction runs on the store's one SQLite connection: its handle may use it directly too.
        const raw = sqliteConnection(db);
        if (raw) registerSqliteConnection(tx, raw);
        return work(repositories(tx, dialect));
      }),
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
function cachingSqlite(path: string): { database: SqliteDatabase; raw: BetterSqlite3.Database } {
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
  const database: SqliteDatabase = {
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
  return { database, raw };
}

/**
 * Opens the configured database: PostgreSQL when `postgres` is set (the server must answer), else the SQLite
 * file. Does not migrate.
 */
export async function openStore(opts: DatabaseOptions, log: Logger = NO_LOG): Promise<Store> {
  if (opts.postgres) {
    const pgOpts = opts.postgres;
    // pg is loaded only when PostgreSQL is configured (SQLite processes stay smaller).
    const { createPostgresDialect, pingPostgres } = await import("./postgres.js");
    const connect = (url: string) =>
      createPostgresDialect(
        {
          url,
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
    const { dialect, pool } = connect(pgOpts.url);
    const db = new Kysely<Database>({ dialect });
    try {
      await pingPostgres(pool);
    } catch (e) {
      await db.destroy();
      throw new Error(`cannot reach PostgreSQL (database.postgres.url): ${(e as Error).message}`);
    }
    const replicas = await openReplicas(pgOpts, pool, connect, log);
    const store = storeOver(db, "postgres", replicas ? () => replicas.db : undefined);
    return {
      ...store,
      close: async () => {
        await replicas?.close();
        await db.destroy();
      },
    };
  }
  const { database, raw } = cachingSqlite(opts.sqlite.path);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  registerSqliteConnection(db, raw);
  return storeOver(db, "sqlite");
}

/** The read replicas of `database.postgres.read_replicas`, or undefined when there are none. */
async function openReplicas(
  pgOpts: NonNullable<DatabaseOptions["postgres"]>,
  primary: import("pg").Pool,
  connect: (url: string) => { pool: import("pg").Pool },
  log: Logger,
): Promise<ReplicaReader | undefined> {
  const urls = pgOpts.read_replicas ?? [];
  if (urls.length === 0) return undefined;
  const maxLagMs = pgOpts.max_replica_lag_ms ?? 1000;
  const reader = new ReplicaReader({
    pools: urls.map((url) => ({ url, pool: connect(url).pool })),
    primary,
    maxLagMs,
    // Often enough that a lagging replica is skipped well within the lag it may have.
    checkIntervalMs: Math.min(1000, Math.max(100, Math.floor(maxLagMs / 4))),
    log,
  });
  // A replica that is down at start is skipped (and checked again); the start does not fail.
  await reader.start();
  return reader;
}

const NO_LOG: Logger = { info() {}, warn() {}, error() {}, debug() {} };

/**
 * Opens the configured database, migrates it, runs `work` and closes it: what a one-shot CLI command needs.
 * Example: `await withMigratedStore(cfg.database, (store) => store.repos.peppers.live())`.
 */
export async function withMigratedStore<T>(
  opts: DatabaseOptions,
  work: (store: Store) => Promise<T>,
): Promise<T> {
  const store = await openStore(opts);
  try {
    await migrateToLatest(store);
    return await work(store);
  } finally {
    await store.close();
  }
}

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
