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

/** A hot SELECT waiting for the next batch of its connection. */
interface Waiting {
  readonly run: () => unknown[];
  readonly viaKysely: () => Promise<unknown[]>;
  readonly resolve: (rows: unknown[]) => void;
  readonly reject: (err: unknown) => void;
}

/** The connections with a batch pending, and what waits in it. */
const batches = new Map<BetterSqlite3.Database, Waiting[]>();
const BEGIN = new WeakMap<
  BetterSqlite3.Database,
  readonly [BetterSqlite3.Statement, BetterSqlite3.Statement]
>();

function settle(w: Waiting): void {
  try {
    w.resolve(w.run());
  } catch (err) {
    w.reject(err);
  }
}

/**
 * Runs the SELECTs that arrived during one turn of the event loop: several in one read transaction (a WAL
 * read lock and its release cost about 8 µs per statement on the bench machine, more than an indexed read),
 * one on its own; through Kysely when a transaction holds the connection by now (it waits its turn).
 */
function flush(raw: BetterSqlite3.Database): void {
  const waiting = batches.get(raw) ?? [];
  batches.delete(raw);
  if (!raw.open || raw.inTransaction) {
    for (const w of waiting) w.viaKysely().then(w.resolve, w.reject);
    return;
  }
  if (waiting.length === 1) {
    settle(waiting[0]!);
    return;
  }
  let pair = BEGIN.get(raw);
  try {
    if (pair === undefined) {
      pair = [raw.prepare("begin"), raw.prepare("commit")] as const;
      BEGIN.set(raw, pair);
    }
    pair[0].run();
  } catch {
    // The connection cannot begin now (none known to happen; better-sqlite3 runs other statements even
    // while one is iterated): each read goes its own way instead of throwing out of the event loop.
    for (const w of waiting) w.viaKysely().then(w.resolve, w.reject);
    return;
  }
  try {
    for (const w of waiting) settle(w);
  } finally {
    endRead(raw, pair[1]);
  }
}

/** Ends the batch's read transaction: its commit only releases the read lock (a rollback if that fails). */
function endRead(raw: BetterSqlite3.Database, commit: BetterSqlite3.Statement): void {
  if (!raw.inTransaction) return;
  try {
    commit.run();
  } catch {
    if (raw.inTransaction) raw.exec("rollback");
  }
}

/**
 * A SELECT that runs on every request of a hot path (a token check, a v1 lookup, a hashed lookup), its SQL
 * written once per dialect instead of built by Kysely on each call. On SQLite, when no transaction holds the
 * connection, it runs straight on better-sqlite3 (Kysely's promise chain and connection lock cost about
 * 15 µs per query, more than an indexed read), batched with the other hot SELECTs of the same turn of the
 * event loop in one read transaction. `batched: false` (for the statement, or for one call) runs it at once
 * instead: for a statement whose caller already shares one read among concurrent requests, and for a
 * request that carries a body (fifty 1000-hash lookups whose bodies waited for the token check's batch cost
 * three times the CPU: their buffers lived through more garbage collections). Inside a transaction (a `Transaction` handle, or another caller's open
 * transaction on the shared connection, which Kysely makes us wait for) and on PostgreSQL it runs through
 * Kysely, so pools, prepared statements and transactions work as before.
 *
 *   const USER = hotSelect<{ user_id: string }>({ sqlite: "select user_id from t where k = ?", postgres: "… = $1" });
 *   const rows = await USER(db, dialect, [key]);
 */
export function hotSelect<Row>(
  text: HotSql,
  opts: { batched: boolean } = { batched: true },
): (
  db: Kysely<Database>,
  dialect: Dialect,
  params: readonly HotValue[],
  batched?: boolean,
) => Promise<Row[]> {
  const statements = new WeakMap<BetterSqlite3.Database, BetterSqlite3.Statement<HotValue[], Row>>();
  const viaKysely = async (db: Kysely<Database>, dialect: Dialect, params: readonly HotValue[]) => {
    const { rows } = await db.executeQuery<Row>(CompiledQuery.raw(text[dialect], [...params]));
    return rows;
  };
  return (db, dialect, params, batched = opts.batched) => {
    const raw = dialect === "sqlite" ? sqliteConnection(db) : undefined;
    if (!raw?.open || raw.inTransaction) return viaKysely(db, dialect, params);
    let prepared = statements.get(raw);
    if (prepared === undefined) {
      try {
        prepared = raw.prepare<HotValue[], Row>(text.sqlite);
      } catch (err) {
        return Promise.reject(err);
      }
      statements.set(raw, prepared);
    }
    const stmt = prepared;
    if (!batched) {
      try {
        return Promise.resolve(stmt.all(...params));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    let waiting = batches.get(raw);
    if (waiting === undefined) {
      waiting = [];
      batches.set(raw, waiting);
      setImmediate(flush, raw);
    }
    return new Promise<Row[]>((resolve, reject) => {
      waiting.push({
        run: () => stmt.all(...params),
        viaKysely: () => viaKysely(db, dialect, params),
        resolve: resolve as (rows: unknown[]) => void,
        reject,
      });
    });
  };
}
