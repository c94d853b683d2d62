import { type Kysely, type Selectable, sql } from "kysely";
import { type Dialect, pairTable } from "./dialect.js";
import { hotSelect } from "./hot-select.js";
import type { AssociationsTable, Database } from "./schema.js";

type AssociationRow = Omit<Selectable<AssociationsTable>, "id">;

/** `GET /api/v1/lookup`, one indexed read. */
const BY_THREEPID = hotSelect<AssociationRow>({
  sqlite:
    "select medium, address, mxid, ts, not_before, not_after, signed_json from associations where medium = ? and address = ?",
  postgres:
    "select medium, address, mxid, ts, not_before, not_after, signed_json from associations where medium = $1 and address = $2",
  postgresBatch:
    "select q.i::int as i, a.medium, a.address, a.mxid, a.ts, a.not_before, a.not_after, a.signed_json from unnest($1::text[], $2::text[]) with ordinality as q(m, ad, i) join associations a on a.medium = q.m and a.address = q.ad",
});

/** A local 3PID association. */
export interface AssociationRecord {
  medium: string;
  address: string;
  mxid: string;
  ts: number;
  notBefore: number;
  notAfter: number;
  /** The signed association as stored at bind or imported from sydent, served as is (absent: signed on read). */
  signedJson?: string | null;
}

export interface AssociationRepository {
  /** The association for a 3PID, if any. */
  findByThreepid(medium: string, address: string): Promise<AssociationRecord | undefined>;
  /** Stores (or replaces) the association of its 3PID; returns its row id. */
  upsert(assoc: AssociationRecord): Promise<number>;
  /** Removes the association if it maps to `mxid`; returns whether it existed. */
  delete(medium: string, address: string, mxid: string): Promise<boolean>;
  /** Up to `limit` associations without a stored signature, in id order. */
  unsigned(limit: number): Promise<Array<AssociationRecord & { id: number }>>;
  /**
   * Stores the signed JSON of association `id` if it is still unsigned and unchanged (same mxid and
   * ts: a rebind meanwhile stored its own); returns whether it did.
   */
  storeSignature(id: number, unchanged: { mxid: string; ts: number }, signedJson: string): Promise<boolean>;
  /**
   * Forgets the stored signed associations that carry a signature by `keyId` (a revoked key), so that they
   * are signed again with the current key on read; returns how many.
   */
  forgetSignaturesBy(keyId: string): Promise<number>;
  /** mxids for plain (medium, address) pairs, in one query. */
  lookupThreepids(
    pairs: ReadonlyArray<readonly [string, string]>,
  ): Promise<Array<{ medium: string; address: string; mxid: string }>>;
}

function toRecord(r: AssociationRow): AssociationRecord {
  return {
    medium: r.medium,
    address: r.address,
    mxid: r.mxid,
    ts: r.ts,
    notBefore: r.not_before,
    notAfter: r.not_after,
    signedJson: r.signed_json,
  };
}

export class KyselyAssociationRepository implements AssociationRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async findByThreepid(medium: string, address: string): Promise<AssociationRecord | undefined> {
    const [r] = await BY_THREEPID(this.db, this.dialect, [medium, address]);
    return r && toRecord(r);
  }

  async upsert(a: AssociationRecord): Promise<number> {
    const row = await this.db
      .insertInto("associations")
      .values({
        medium: a.medium,
        address: a.address,
        mxid: a.mxid,
        ts: a.ts,
        not_before: a.notBefore,
        not_after: a.notAfter,
        signed_json: a.signedJson ?? null,
      })
      .onConflict((oc) =>
        oc.columns(["medium", "address"]).doUpdateSet({
          signed_json: a.signedJson ?? null,
          mxid: a.mxid,
          ts: a.ts,
          not_before: a.notBefore,
          not_after: a.notAfter,
        }),
      )
      .returning("id")
      .executeTakeFirstOrThrow();
    return row.id;
  }

  async delete(medium: string, address: string, mxid: string): Promise<boolean> {
    const res = await this.db
      .deleteFrom("associations")
      .where("medium", "=", medium)
      .where("address", "=", address)
      .where("mxid", "=", mxid)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async unsigned(limit: number): Promise<Array<AssociationRecord & { id: number }>> {
    const rows = await this.db
      .selectFrom("associations")
      .select(["id", "medium", "address", "mxid", "ts", "not_before", "not_after", "signed_json"])
      .where("signed_json", "is", null)
      .orderBy("id")
      .limit(limit)
      .execute();
    return rows.map((r) => ({ ...toRecord(r), id: r.id }));
  }

  async storeSignature(
    id: number,
    unchanged: { mxid: string; ts: number },
    signedJson: string,
  ): Promise<boolean> {
    const res = await this.db
      .updateTable("associations")
      .set({ signed_json: signedJson })
      .where("id", "=", id)
      .where("signed_json", "is", null)
      .where("mxid", "=", unchanged.mxid)
      .where("ts", "=", unchanged.ts)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async forgetSignaturesBy(keyId: string): Promise<number> {
    // `"<keyId>":"` only occurs as a signature's key: inside a JSON string a quote is escaped.
    const pattern = `%${JSON.stringify(keyId).replace(/[\\%_]/g, "\\$&")}:"%`;
    const res = await this.db
      .updateTable("associations")
      .set({ signed_json: null })
      .where(sql<boolean>`signed_json like ${pattern} escape '\\'`)
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  async lookupThreepids(pairs: ReadonlyArray<readonly [string, string]>) {
    if (pairs.length === 0) return [];
    const { rows } = await sql<{ medium: string; address: string; mxid: string }>`
      select a.medium as medium, a.address as address, a.mxid as mxid
      from ${pairTable(this.dialect, pairs)}
      join associations a on a.medium = q.medium and a.address = q.address`.execute(this.db);
    return rows;
  }
}
