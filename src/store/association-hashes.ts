import type BetterSqlite3 from "better-sqlite3";
import { type Kysely, type QueryExecutorProvider, sql } from "kysely";
import { type Dialect, valueParameter } from "./dialect.js";
import { hotSelect } from "./hot-select.js";
import type { Database } from "./schema.js";
import { sqliteConnection } from "./sqlite-connection.js";

/**
 * `POST /v2/lookup`: the hashes come as one parameter (a JSON array on SQLite, a text[] on PostgreSQL). Not
 * batched: it runs while the request holds its parsed body (see hotSelect).
 */
const BY_HASHES = hotSelect<{ hash: string; mxid: string }>(
  {
    sqlite:
      "select hash, mxid from association_hashes where pepper_id = ? and hash in (select value from json_each(?))",
    postgres:
      "select hash, mxid from association_hashes where pepper_id = $1 and hash in (select unnest($2::text[]))",
  },
  { batched: false },
);

/**
 * For a bulk write of association_hashes (a fresh import, migrate-db): on SQLite, the change log's triggers
 * (migration 0160) as `{ name, sql }`, to drop for the write and create again from `sql`; afterwards,
 * `LOG_EVERYTHING_CHANGED` logs one "everything changed" row instead of one per hash (a process holding the
 * hashes in memory reads them again).
 */
export const SQLITE_HASH_LOG_TRIGGERS =
  "select name, sql from sqlite_master where type = 'trigger' and tbl_name = 'association_hashes' order by name";
export const LOG_EVERYTHING_CHANGED = [
  "update association_hash_version set v = v + 1",
  "insert into association_hash_changes (v, pepper_id, hash) select v, null, null from association_hash_version",
] as const;

/** More changes than this at once are not read one by one: the caller reads the whole table again. */
const MAX_CHANGES = 10_000;

/**
 * The change log since a version, in one statement (one snapshot, also on a replica): the version now
 * (kind 0), the lowest logged version above the one given (kind 1: a gap below it means the log was pruned
 * past it), and the changes above it for one pepper with each hash's mxid now (kind 2; NULL: gone), plus any
 * "everything changed" rows (NULL hash). Not batched: the index already shares one read among the lookups
 * that wait for it, which hold their parsed bodies meanwhile.
 */
const CHANGES = hotSelect<{ kind: number; v: number | null; hash: string | null; mxid: string | null }>(
  {
    sqlite: `select 0 as kind, v, null as hash, null as mxid from association_hash_version
    union all select 1, min(v), null, null from association_hash_changes where v > ?
    union all select * from (select 2, c.v, c.hash, h.mxid from association_hash_changes c
      left join association_hashes h on h.pepper_id = c.pepper_id and h.hash = c.hash
      where c.v > ? and (c.pepper_id = ? or c.pepper_id is null) limit ${MAX_CHANGES + 1})`,
    postgres: `select 0 as kind, v, null::text as hash, null::text as mxid from association_hash_version
    union all select 1, min(v), null, null from association_hash_changes where v > $1
    union all (select 2, c.v, c.hash, h.mxid from association_hash_changes c
      left join association_hashes h on h.pepper_id = c.pepper_id and h.hash = c.hash
      where c.v > $2 and (c.pepper_id = $3 or c.pepper_id is null) limit ${MAX_CHANGES + 1})`,
  },
  { batched: false },
);

/**
 * A pepper's hashes in pages: by rowid on SQLite (the table's order: no random reads), by hash on PostgreSQL.
 * Each page comes with the version the statement read, also an empty one: one row with a null hash carries
 * the version. PostgreSQL joins the page to the version row (sorted again: 2 ms per
 * 10,000 rows); SQLite adds the row with UNION ALL (the join's temporary sort cost it 20 %) and the
 * reader takes the largest rowid as where to go on, whatever the order of the rows. Not batched: it is read
 * in the background, a page at a time.
 */
const SCAN = hotSelect<{
  cursor: number | string | null;
  hash: string | null;
  mxid: string | null;
  version: number | null;
}>(
  {
    sqlite: `select null as cursor, null as hash, null as mxid, v as version from association_hash_version
    union all select * from (select rowid, hash, mxid, null from association_hashes not indexed
      where rowid > ? and pepper_id = ? order by rowid limit ?)`,
    postgres: `select h.cursor, h.hash, h.mxid, v.v as version from association_hash_version v
    left join lateral (select hash as cursor, hash, mxid from association_hashes
      where hash > $1 and pepper_id = $2 order by hash limit $3) h on true
    order by h.cursor`,
  },
  { batched: false },
);

/**
 * Takes the lock of `association_hashes`' version row for the rest of the transaction. Every transaction
 * that writes hashes (or deletes associations, whose hashes go by cascade) calls it before anything else:
 * the table's triggers update that row, and a transaction that took it only at its first hash write,
 * holding other row locks already, could deadlock with another waiting for it (PostgreSQL; on SQLite
 * writers take turns anyway). Binds therefore take turns across the cluster.
 */
export async function lockHashVersion(db: QueryExecutorProvider): Promise<void> {
  await sql`update association_hash_version set v = v`.execute(db);
}

/** Where `HashRepository.scan` starts and goes on from. */
export type ScanCursor = number | string;

/** What changed in `association_hashes` above a version (see `HashRepository.changesSince`). */
export interface HashChanges {
  /** The version now. */
  version: number;
  /** The lowest version above the one asked that is still logged; null when none is. */
  lowest: number | null;
  /** Each change for the pepper, with the hash's mxid now (null: it is gone); a null hash: reread all. */
  changes: Array<{ hash: string | null; mxid: string | null }>;
  /** More changes than are read at once: read the whole table again instead. */
  tooMany: boolean;
}

/** Rows per INSERT statement (4 parameters each): far below SQLite's 32 766 and PostgreSQL's 65 535. */
const INSERT_CHUNK = 1000;

/**
 * The insert of one hash, prepared once per SQLite connection. In a transaction it runs straight on the
 * connection, row by row: a rotation batch of 1000 rows in one Kysely-built INSERT cost 27 µs per row
 * with the change-log triggers on the table (14 µs without them), row by row 3.3 µs (bench/README.md).
 */
const SQLITE_INSERT_ONE = new WeakMap<
  BetterSqlite3.Database,
  BetterSqlite3.Statement<[number, string, number, number]>
>();
function sqliteInsertOne(
  raw: BetterSqlite3.Database,
): BetterSqlite3.Statement<[number, string, number, number]> {
  let stmt = SQLITE_INSERT_ONE.get(raw);
  if (stmt === undefined) {
    stmt = raw.prepare(`insert into association_hashes (pepper_id, hash, association_id, mxid)
      values (?, ?, ?, (select mxid from associations where id = ?))
      on conflict (pepper_id, hash) do update set mxid = excluded.mxid`);
    SQLITE_INSERT_ONE.set(raw, stmt);
  }
  return stmt;
}

export interface HashRow {
  pepperId: number;
  associationId: number;
  hash: string;
}

/** The lookup hashes of associations, one per live pepper (the only writer of `association_hashes`). */
export interface HashRepository {
  /**
   * Stores hashes with their association's mxid as it is when the statement runs (read in the same
   * statement, so a rotation that read the association earlier cannot write a stale mxid); an existing
   * hash takes the current mxid.
   */
  insert(rows: readonly HashRow[]): Promise<void>;
  /** mxids for sha256 hashes under one pepper, in one query of one table (an index search per hash). */
  lookup(pepperId: number, hashes: readonly string[]): Promise<Array<{ hash: string; mxid: string }>>;
  /** Deletes up to `limit` hashes of a pepper; returns how many went. */
  deleteForPepper(pepperId: number, limit: number): Promise<number>;
  /** `lockHashVersion` on this repository's transaction (`writingHashes` calls it first). */
  lockVersion(): Promise<void>;
  /** Logs "read this pepper's hashes again" under a new version (a pepper made current). */
  logReread(pepperId: number): Promise<void>;
  /** The changes logged above version `after` (by the table's triggers), read in one snapshot. */
  changesSince(pepperId: number, after: number): Promise<HashChanges>;
  /**
   * Up to `limit` hashes of a pepper after `cursor` (none: from the start), where to go on (none: done),
   * and the table's version in the statement's snapshot (an empty page has one too): with replicas each
   * page may come from another server.
   */
  scan(
    pepperId: number,
    cursor: ScanCursor | undefined,
    limit: number,
  ): Promise<{
    rows: Array<{ hash: string; mxid: string }>;
    next: ScanCursor | undefined;
    version: number;
  }>;
  /** The version of the table now. */
  version(): Promise<number>;
  /** How many hashes a pepper has. */
  count(pepperId: number): Promise<number>;
  /** Forgets the changes logged at or below `version`; returns how many went. */
  pruneChanges(version: number): Promise<number>;
}

export class KyselyHashRepository implements HashRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async insert(rows: readonly HashRow[]): Promise<void> {
    const raw = this.dialect === "sqlite" && this.db.isTransaction ? sqliteConnection(this.db) : undefined;
    if (raw?.inTransaction) {
      const one = sqliteInsertOne(raw);
      for (const r of rows) one.run(r.pepperId, r.hash, r.associationId, r.associationId);
      return;
    }
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      await this.db
        .insertInto("association_hashes")
        .values(
          rows.slice(i, i + INSERT_CHUNK).map((r) => ({
            pepper_id: r.pepperId,
            hash: r.hash,
            association_id: r.associationId,
            mxid: sql<string>`(select mxid from associations where id = ${r.associationId})`,
          })),
        )
        .onConflict((oc) =>
          oc.columns(["pepper_id", "hash"]).doUpdateSet((eb) => ({ mxid: eb.ref("excluded.mxid") })),
        )
        .execute();
    }
  }

  async lookup(pepperId: number, hashes: readonly string[]) {
    if (hashes.length === 0) return [];
    return BY_HASHES(this.db, this.dialect, [pepperId, valueParameter(this.dialect, hashes)]);
  }

  async changesSince(pepperId: number, after: number): Promise<HashChanges> {
    const rows = await CHANGES(this.db, this.dialect, [after, after, pepperId]);
    const out: HashChanges = { version: 0, lowest: null, changes: [], tooMany: false };
    for (const r of rows) {
      if (r.kind === 0) out.version = Number(r.v);
      else if (r.kind === 1) out.lowest = r.v === null ? null : Number(r.v);
      else out.changes.push({ hash: r.hash, mxid: r.mxid });
    }
    out.tooMany = out.changes.length > MAX_CHANGES;
    return out;
  }

  async scan(pepperId: number, cursor: ScanCursor | undefined, limit: number) {
    const from = cursor ?? (this.dialect === "sqlite" ? 0 : "");
    const read = await SCAN(this.db, this.dialect, [from, pepperId, limit]);
    const rows: Array<{ hash: string; mxid: string }> = [];
    let version = 0;
    let last: ScanCursor | undefined;
    for (const r of read) {
      if (r.version !== null) version = Number(r.version);
      if (r.cursor === null || r.hash === null || r.mxid === null) continue;
      rows.push({ hash: r.hash, mxid: r.mxid });
      // SQLite: the largest rowid; PostgreSQL: the last row (sorted by the column's collation).
      if (typeof r.cursor === "string" || !(typeof last === "number" && last > r.cursor)) last = r.cursor;
    }
    return { rows, next: rows.length < limit ? undefined : last, version };
  }

  async lockVersion(): Promise<void> {
    await lockHashVersion(this.db);
  }

  async logReread(pepperId: number): Promise<void> {
    await sql`update association_hash_version set v = v + 1`.execute(this.db);
    await sql`insert into association_hash_changes (v, pepper_id, hash)
      select v, ${pepperId}, null from association_hash_version`.execute(this.db);
  }

  async count(pepperId: number): Promise<number> {
    const row = await this.db
      .selectFrom("association_hashes")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("pepper_id", "=", pepperId)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async version(): Promise<number> {
    const row = await this.db.selectFrom("association_hash_version").select("v").executeTakeFirst();
    return Number(row?.v ?? 0);
  }

  async pruneChanges(version: number): Promise<number> {
    const res = await this.db
      .deleteFrom("association_hash_changes")
      .where("v", "<=", version)
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  async deleteForPepper(pepperId: number, limit: number): Promise<number> {
    const res = await this.db
      .deleteFrom("association_hashes")
      .where("pepper_id", "=", pepperId)
      .where(
        "hash",
        "in",
        this.db
          .selectFrom("association_hashes")
          .select("hash")
          .where("pepper_id", "=", pepperId)
          .limit(limit),
      )
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
