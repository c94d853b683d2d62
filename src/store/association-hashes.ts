import { type Kysely, sql } from "kysely";
import { type Dialect, valueParameter } from "./dialect.js";
import { hotSelect } from "./hot-select.js";
import type { Database } from "./schema.js";

/** `POST /v2/lookup`: the hashes come as one parameter (a JSON array on SQLite, a text[] on PostgreSQL). */
const BY_HASHES = hotSelect<{ hash: string; mxid: string }>({
  sqlite:
    "select hash, mxid from association_hashes where pepper_id = ? and hash in (select value from json_each(?))",
  postgres:
    "select hash, mxid from association_hashes where pepper_id = $1 and hash in (select unnest($2::text[]))",
});

/** Rows per INSERT statement (4 parameters each): far below SQLite's 32 766 and PostgreSQL's 65 535. */
const INSERT_CHUNK = 1000;

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
}

export class KyselyHashRepository implements HashRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async insert(rows: readonly HashRow[]): Promise<void> {
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
