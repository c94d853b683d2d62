/**
 * PostgreSQL prepared statements for Kysely (pg's named statements). Types only from pg: this module is
 * reached from the replica reader, which SQLite processes load too, and must not load pg itself.
 */
import { createHash } from "node:crypto";
import type { PostgresCursor, PostgresPool, PostgresPoolClient } from "kysely";
import type pg from "pg";

/** Named (prepared) statements kept per connection; further SQL texts run unnamed. */
const MAX_NAMED_PER_CONNECTION = 200;
/** Longer SQL texts are not worth a prepared statement (batched inserts and such). */
const MAX_NAMED_SQL_CHARS = 2000;

/** Whether a statement is prepared once per connection: plain SELECTs of named columns. */
function worthPreparing(sqlText: string): boolean {
  // `*` is left out: a prepared `select *` fails ("cached plan must not change result type") after a
  // migration on another instance adds a column.
  return sqlText.length <= MAX_NAMED_SQL_CHARS && /^\s*select\s/i.test(sqlText) && !sqlText.includes("*");
}

/**
 * Wraps a pg pool for Kysely so that each connection prepares a SELECT once and then only binds and
 * executes it (pg's named statements): no parse and plan of the same text on every token check or
 * lookup. Kysely still builds the SQL; the same text gets the same name.
 */
export function preparingPool(pool: pg.Pool): PostgresPool {
  const names = new Map<string, string>();
  const nameOf = (text: string): string => {
    let name = names.get(text);
    if (name === undefined) {
      name = `seraph_${createHash("sha256").update(text).digest("base64url").slice(0, 22)}`;
      if (names.size < 10_000) names.set(text, name);
    }
    return name;
  };
  // One wrapper per pg client, made at its first checkout: Kysely keeps its connection object per wrapper
  // (a WeakMap), so a new wrapper per checkout had cost a new Kysely connection and a WeakMap entry per
  // query, kept until a full collection (13 MB of old generation in 15 s of v1 lookups and token checks).
  const wrappers = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  const wrap = (client: pg.PoolClient): PostgresPoolClient => {
    const own = new Set<string>();
    const query = (a: string | PostgresCursor<unknown>, parameters?: ReadonlyArray<unknown>) => {
      if (typeof a !== "string") return client.query(a as never);
      const values = [...(parameters ?? [])];
      if (!worthPreparing(a)) return client.query(a, values);
      const name = nameOf(a);
      if (!own.has(name)) {
        if (own.size >= MAX_NAMED_PER_CONNECTION) return client.query(a, values);
        own.add(name);
      }
      return client.query({ name, text: a, values });
    };
    return {
      // pg's overloads and result type are wider than Kysely's interface spells them.
      query: query as unknown as PostgresPoolClient["query"],
      // pg-pool gives the client a new `release` at each checkout: looked up when called.
      release: (destroy?: boolean) => client.release(destroy),
    };
  };
  return {
    end: () => pool.end(),
    connect: async (): Promise<PostgresPoolClient> => {
      const client = await pool.connect();
      let wrapper = wrappers.get(client);
      if (wrapper === undefined) {
        wrapper = wrap(client);
        wrappers.set(client, wrapper);
      }
      return wrapper;
    },
  };
}
