import type BetterSqlite3 from "better-sqlite3";
import { LOG_EVERYTHING_CHANGED, SQLITE_HASH_LOG_TRIGGERS } from "../store/association-hashes.js";
import { lookupHash } from "../threepid/normalise.js";
import type { ImportedBinding } from "./mapping.js";

/** Rows per prepared INSERT (7 parameters each: far below SQLite's limit of 32 766). */
const ROWS = 64;

const COLUMNS = "(medium, address, mxid, ts, not_before, not_after, signed_json)";

/** Two sydent spellings that fold to one address: the newer binding wins (as in `ImportWriter.writeBindings`). */
const UPSERT = `on conflict (medium, address) do update set mxid = excluded.mxid, ts = excluded.ts,
  not_before = excluded.not_before, not_after = excluded.not_after, signed_json = excluded.signed_json
  where excluded.ts > associations.ts`;

/** The tables whose secondary indexes a fresh import drops while it writes, and builds once at the end. */
const TABLES = ["associations", "association_hashes"];

/**
 * The fast path of a fresh (not `--merge`) import into SQLite, on the store's own better-sqlite3 connection
 * (so its statements are part of the batch's transaction): bindings go in with cached prepared multi-row
 * statements instead of Kysely-built ones, without their hashes and without secondary indexes; once every
 * binding is in, one statement hashes them all in hash order and the indexes are built by sorting. Random-order
 * index inserts were most of the import's time, and each batch's commit rewrote every index page it touched.
 */
export class SqliteBindingWriter {
  /** How many bindings `write` takes best at once (one prepared statement). */
  readonly rowsPerStatement = ROWS;
  private readonly many: BetterSqlite3.Statement;
  private readonly one: BetterSqlite3.Statement;
  private readonly args: unknown[] = [];

  constructor(private readonly raw: BetterSqlite3.Database) {
    this.many = raw.prepare(
      `insert into associations ${COLUMNS} values ${Array(ROWS).fill("(?, ?, ?, ?, ?, ?, ?)").join(", ")} ${UPSERT}`,
    );
    this.one = raw.prepare(`insert into associations ${COLUMNS} values (?, ?, ?, ?, ?, ?, ?) ${UPSERT}`);
  }

  /**
   * Drops the secondary indexes of the binding tables (made by CREATE INDEX, not unique: what enforces a
   * constraint stays) and returns the SQL that creates them again, to be kept with the import's state. Call
   * inside a transaction.
   */
  dropSecondaryIndexes(): string[] {
    const rows = this.raw
      .prepare(
        `select m.name, m.sql from sqlite_master m
         join pragma_index_list(m.tbl_name) i on i.name = m.name and i."unique" = 0 and i.origin = 'c'
         where m.type = 'index' and m.sql is not null and m.tbl_name in (${TABLES.map(() => "?").join(", ")})
         order by m.name`,
      )
      .all(...TABLES) as Array<{ name: string; sql: string }>;
    for (const r of rows) this.raw.exec(`drop index "${r.name.replace(/"/g, '""')}"`);
    return rows.map((r) => r.sql);
  }

  /** Writes bindings (in the caller's transaction); returns how many were not (an older folded spelling). */
  write(batch: readonly ImportedBinding[]): number {
    let changed = 0;
    let i = 0;
    const args = this.args;
    for (; i + ROWS <= batch.length; i += ROWS) {
      args.length = 0;
      for (let j = i; j < i + ROWS; j++) {
        const b = batch[j]!;
        args.push(b.medium, b.address, b.mxid, b.ts, b.notBefore, b.notAfter, b.signedJson);
      }
      changed += this.many.run(args).changes;
    }
    for (; i < batch.length; i++) {
      const b = batch[i]!;
      changed += this.one.run(
        b.medium,
        b.address,
        b.mxid,
        b.ts,
        b.notBefore,
        b.notAfter,
        b.signedJson,
      ).changes;
    }
    return batch.length - changed;
  }

  /**
   * Hashes every association under `pepper` in one statement, inserted in hash order (the primary key's), and
   * creates the dropped indexes again (each built by one sort). Call inside a transaction with foreign keys off:
   * the rows come from `associations` itself, and checking each one would read the table in random order.
   * Returns the number of hashes written.
   */
  buildHashes(pepper: { id: number; pepper: string }, indexes: readonly string[]): number {
    this.raw.function("seraph_import_lookup_hash", { deterministic: true }, (address, medium) =>
      lookupHash(String(address), String(medium), pepper.pepper),
    );
    // The change log's triggers (migration 0160) would log each of these rows: drop them for this statement
    // and log one "everything changed" row instead (processes holding the hashes in memory read them again).
    const triggers = this.raw.prepare(SQLITE_HASH_LOG_TRIGGERS).all() as Array<{ name: string; sql: string }>;
    for (const t of triggers) this.raw.exec(`drop trigger "${t.name.replace(/"/g, '""')}"`);
    const n = this.raw
      .prepare(
        `insert into association_hashes (pepper_id, hash, association_id, mxid)
         select ?, seraph_import_lookup_hash(address, medium) as h, id, mxid from associations where true order by h
         on conflict (pepper_id, hash) do update set mxid = excluded.mxid`,
      )
      .run(pepper.id).changes;
    for (const t of triggers) this.raw.exec(t.sql);
    for (const statement of LOG_EVERYTHING_CHANGED) this.raw.exec(statement);
    for (const create of indexes) this.raw.exec(create);
    return n;
  }

  /** The number of associations stored (after a fresh import: those it wrote). */
  count(): number {
    return (this.raw.prepare("select count(*) as n from associations").get() as { n: number }).n;
  }

  /** Runs `work` with foreign key checks off on this connection (outside any transaction; SQLite ignores it inside one). */
  async withoutForeignKeys<T>(work: () => Promise<T>): Promise<T> {
    this.raw.pragma("foreign_keys = OFF");
    try {
      return await work();
    } finally {
      this.raw.pragma("foreign_keys = ON");
    }
  }
}
