import { CompiledQuery, type Kysely } from "kysely";
import type { Database } from "./schema.js";
import { TurnQueues } from "./turn-queue.js";

/** Most reads in one batched statement; more waiting run as several. */
const MAX_BATCH = 256;

/** A read waiting for its statement's next batch on one Kysely instance (the pool or a replica's). */
interface Waiting {
  readonly params: readonly string[];
  readonly resolve: (rows: unknown[]) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * A PostgreSQL SELECT by key(s) whose reads of one turn of the event loop run as one statement: `single`
 * takes the key(s) as `$1`, `$2`…, `batch` takes one `text[]` per key (the keys of every waiting read, in
 * order) and returns each row with `i`, the 1-based position of the read it answers (`unnest … with
 * ordinality`). One round trip, one bind and one execution for many reads: with pg every statement costs a
 * write and a read on its connection and a pool checkout, more than the indexed read itself. A lone read
 * runs `single`. A failed batch fails every read in it (a database error, not one read's input).
 *
 *   const byKey = postgresBatcher<{ v: string }>("select v from t where k = $1",
 *     "select q.i::int as i, t.v from unnest($1::text[]) with ordinality q(k, i) join t on t.k = q.k");
 *   const rows = await byKey(db, ["key"]);
 */
export function postgresBatcher<Row>(
  single: string,
  batch: string,
): (db: Kysely<Database>, params: readonly string[]) => Promise<Row[]> {
  const run = (db: Kysely<Database>, waiting: readonly Waiting[]): void => {
    const keys = waiting[0]!.params.map((_, k) => waiting.map((w) => w.params[k]));
    db.executeQuery<Row & { i: number }>(CompiledQuery.raw(batch, keys)).then(
      ({ rows }) => {
        const answers: Row[][] = waiting.map(() => []);
        for (const row of rows) answers[row.i - 1]?.push(row);
        for (let n = 0; n < waiting.length; n++) waiting[n]!.resolve(answers[n]!);
      },
      (err: unknown) => {
        for (const w of waiting) w.reject(err);
      },
    );
  };

  const flush = (db: Kysely<Database>, waiting: readonly Waiting[]): void => {
    if (waiting.length === 1) {
      const w = waiting[0]!;
      db.executeQuery<Row>(CompiledQuery.raw(single, [...w.params])).then(
        ({ rows }) => w.resolve(rows),
        w.reject,
      );
      return;
    }
    for (let start = 0; start < waiting.length; start += MAX_BATCH) {
      run(db, waiting.slice(start, start + MAX_BATCH));
    }
  };

  const pending = new TurnQueues<Kysely<Database>, Waiting>(flush);
  return (db, params) => {
    return new Promise<Row[]>((resolve, reject) => {
      pending.push(db, { params, resolve: resolve as (rows: unknown[]) => void, reject });
    });
  };
}
