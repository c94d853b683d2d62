import type BetterSqlite3 from "better-sqlite3";
import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

/** The better-sqlite3 connection under each SQLite store's Kysely instance (set by `openStore`). */
const SQLITE_CONNECTIONS = new WeakMap<Kysely<Database>, BetterSqlite3.Database>();

/** Records the connection under a SQLite store's Kysely instance (`openStore` only). */
export function registerSqliteConnection(db: Kysely<Database>, raw: BetterSqlite3.Database): void {
  SQLITE_CONNECTIONS.set(db, raw);
}

/**
 * The better-sqlite3 connection a SQLite store's queries run on (also for the handle of a transaction
 * begun by `Store.transaction`), or undefined on PostgreSQL. Only for work that Kysely's statement
 * building would slow down (`seraph import-sydent`, hot SELECTs, hash inserts); statements run on it share
 * the store's transactions, since there is a single connection.
 */
export function sqliteConnection(db: Kysely<Database>): BetterSqlite3.Database | undefined {
  return SQLITE_CONNECTIONS.get(db);
}
