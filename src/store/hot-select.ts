import type BetterSqlite3 from "better-sqlite3";
import { CompiledQuery, type Kysely } from "kysely";
import type { Dialect } from "./dialect.js";
import { postgresBatcher } from "./postgres-batch.js";
import type { Database } from "./schema.js";
import { sqliteConnection } from "./sqlite-connection.js";
import { TurnQueues } from "./turn-queue.js";

/** A parameter of a hot SELECT (an array: a PostgreSQL `text[]`). */
export type HotValue = string | number | readonly string[];

/** The SQL of a hot SELECT in each dialect's placeholder style (`?` and `$1`). */
export interface HotSql {
  sqlite: string;
  postgres: string;
  /**
   * The PostgreSQL reads of one turn of the event loop as one statement: one `text[]` per parameter and
   * each row's `i`, the position of the read it answers (see {@link postgresBatcher}).
   */
  postgresBatch?: string;
}

/** A hot SELECT waiting for the next batch of its connection. */
interface Waiting {
  readonly stmt: BetterSqlite3.Statement<HotValue[], unknown>;
  readonly params: readonly HotValue[];
  /** The Kysely instance it was asked on, for when the batch cannot run it (see `flush`). */
  readonly db: Kysely<Database>;
  readonly resolve: (rows: unknown[]) => void;
  readonly reject: (err: unknown) => void;
}

const BEGIN = new WeakMap<
  BetterSqlite3.Database,
  readonly [BetterSqlite3.Statement, BetterSqlite3.Statement]
>();

/** Runs `sql` through Kysely, which waits for a transaction that holds the connection. */
async function viaKysely<Row>(
  db: Kysely<Database>,
  sql: string,
  params: readonly HotValue[],
): Promise<Row[]> {
  const { rows } = await db.executeQuery<Row>(CompiledQuery.raw(sql, [...params]));
  return rows;
}

const isText = (v: HotValue): v is string => typeof v === "string";

function settle(w: Waiting): void {
  try {
    w.resolve(w.stmt.all(...w.params));
  } catch (err) {
    w.reject(err);
  }
}

/**
 * Runs the SELECTs that arrived during one turn of the event loop: several in one read transaction (a WAL
 * read lock and its release cost about 8 µs per statement on the bench machine, more than an indexed read),
 * one on its own. Through Kysely, each in its turn, when a transaction holds the connection by now, or when
 * the read transaction cannot begin (none known to happen: better that than an exception thrown out of the
 * event loop).
 */
function flush(raw: BetterSqlite3.Database, waiting: readonly Waiting[]): void {
  if (raw.open && !raw.inTransaction && waiting.length === 1) {
    settle(waiting[0]!);
    return;
  }
  const commit = raw.open && !raw.inTransaction ? beginRead(raw) : undefined;
  if (commit === undefined) {
    for (const w of waiting) viaKysely(w.db, w.stmt.source, w.params).then(w.resolve, w.reject);
    return;
  }
  try {
    for (const w of waiting) settle(w);
  } finally {
    endRead(raw, commit);
  }
}

/** Begins the batch's read transaction; returns its commit, or undefined when it could not begin. */
function beginRead(raw: BetterSqlite3.Database): BetterSqlite3.Statement | undefined {
  try {
    let pair = BEGIN.get(raw);
    if (pair === undefined) {
      pair = [raw.prepare("begin"), raw.prepare("commit")] as const;
      BEGIN.set(raw, pair);
    }
    pair[0].run();
    return pair[1];
  } catch {
    return undefined;
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

/** The connections with a batch pending, and what waits in it. */
const batches = new TurnQueues<BetterSqlite3.Database, Waiting>(flush);

/**
 * A SELECT that runs on every request of a hot path (a token check, a v1 lookup, a hashed lookup), its SQL
 * written once per dialect instead of built by Kysely on each call. On SQLite, when no transaction holds the
 * connection, it runs straight on better-sqlite3 (Kysely's promise chain and connection lock cost about
 * 15 µs per query, more than an indexed read), batched with the other hot SELECTs of the same turn of the
 * event loop in one read transaction. `batched: false` (for the statement, or for one call) runs it at once
 * instead: for a statement whose caller already shares one read among concurrent requests, and for a
 * request that carries a body (fifty 1000-hash lookups whose bodies waited for the token check's batch cost
 * three times the CPU: their buffers lived through more garbage collections). Inside a transaction (a
 * `Transaction` handle, or another caller's open transaction on the shared connection, which Kysely makes us
 * wait for) and on PostgreSQL it runs through Kysely, so pools, prepared statements and transactions work as
 * before; there, with `postgresBatch`, the reads of one turn outside a transaction share one statement
 * (a call's `batched: false` does not apply: every read there waits for a round trip anyway).
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
  const together = text.postgresBatch ? postgresBatcher<Row>(text.postgres, text.postgresBatch) : undefined;
  return (db, dialect, params, batched = opts.batched) => {
    if (dialect === "postgres") {
      // Every read there waits for a round trip anyway: one turn more costs nothing, so a call's `batched:
      // false` (kept for SQLite, where the read would otherwise be answered at once) does not apply.
      return together && opts.batched && !db.isTransaction && params.every(isText)
        ? together(db, params)
        : viaKysely<Row>(db, text.postgres, params);
    }
    const raw = sqliteConnection(db);
    if (!raw?.open || raw.inTransaction) return viaKysely<Row>(db, text[dialect], params);
    let stmt = statements.get(raw);
    try {
      if (stmt === undefined) {
        stmt = raw.prepare<HotValue[], Row>(text.sqlite);
        statements.set(raw, stmt);
      }
      if (!batched) return Promise.resolve(stmt.all(...params));
    } catch (err) {
      return Promise.reject(err);
    }
    const prepared = stmt;
    return new Promise<Row[]>((resolve, reject) => {
      batches.push(raw, {
        stmt: prepared,
        params,
        db,
        resolve: resolve as (rows: unknown[]) => void,
        reject,
      });
    });
  };
}
