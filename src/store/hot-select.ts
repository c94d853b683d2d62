import type BetterSqlite3 from "better-sqlite3";
import { CompiledQuery, type Kysely } from "kysely";
import type { Dialect } from "./dialect.js";
import type { Database } from "./schema.js";
import { sqliteConnection } from "./sqlite-connection.js";

/** A parameter of a hot SELECT (an array: a PostgreSQL `text[]`). */
export type HotValue = string | number | readonly string[];

/** The SQL of a hot SELECT in each dialect's placeholder style (`?` and `$1`). */
export interface HotSql {
  sqlite: string;
  postgres: string;
}

/**
 * A SELECT that runs on every request of a hot path (a token check, a v1 lookup, a hashed lookup), its SQL
 * written once per dialect instead of built by Kysely on each call. On SQLite, when no transaction holds the
 * connection, it runs straight on better-sqlite3: Kysely's promise chain and connection lock cost about
 * 15 µs per query on the bench machine, more than an indexed read. Inside a transaction (a `Transaction`
 * handle, or another caller's open transaction on the shared connection, which Kysely makes us wait for)
 * and on PostgreSQL it runs through Kysely, so pools, prepared statements and transactions work as before.
 *
 *   const USER = hotSelect<{ user_id: string }>({ sqlite: "select user_id from t where k = ?", postgres: "… = $1" });
 *   const rows = await USER(db, dialect, [key]);
 */
export function hotSelect<Row>(
  text: HotSql,
): (db: Kysely<Database>, dialect: Dialect, params: readonly HotValue[]) => Promise<Row[]> {
  const statements = new WeakMap<BetterSqlite3.Database, BetterSqlite3.Statement<HotValue[], Row>>();
  return async (db, dialect, params) => {
    const raw = dialect === "sqlite" ? sqliteConnection(db) : undefined;
    if (raw?.open && !raw.inTransaction) {
      let stmt = statements.get(raw);
      if (stmt === undefined) {
        stmt = raw.prepare<HotValue[], Row>(text.sqlite);
        statements.set(raw, stmt);
      }
      return stmt.all(...params);
    }
    const { rows } = await db.executeQuery<Row>(CompiledQuery.raw(text[dialect], [...params]));
    return rows;
  };
}
