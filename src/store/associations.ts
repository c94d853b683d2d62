import { type Kysely, sql } from "kysely";
import type { Dialect } from "./migrations.js";
import type { Database } from "./schema.js";

/** A local 3PID association. */
export interface AssociationRecord {
  medium: string;
  address: string;
  mxid: string;
  ts: number;
  notBefore: number;
  notAfter: number;
  /** The signed association as imported from sydent, served as is (absent: Seraph signs). */
  signedJson?: string | null;
}

export interface AssociationRepository {
  /** The association for a 3PID, if any. */
  findByThreepid(medium: string, address: string): Promise<AssociationRecord | undefined>;
  /**
   * Stores (or replaces) the association, with its lookup hash under every live pepper (read in the same
   * transaction, `hashFor` computes it), and — when invites wait for this 3PID — an onbind delivery job.
   * Returns whether a job was queued.
   */
  bind(
    assoc: AssociationRecord,
    hashFor: (pepper: string) => string,
    now: number,
  ): Promise<{ queued: boolean }>;
  /** Removes the association if it maps to `mxid` (and its pending deliveries); returns whether it existed. */
  unbind(medium: string, address: string, mxid: string): Promise<boolean>;
  /** mxids for sha256 hashes under one pepper, in one query (an index search per hash). */
  lookupHashes(pepperId: number, hashes: readonly string[]): Promise<Array<{ hash: string; mxid: string }>>;
  /** mxids for plain (medium, address) pairs, in one query. */
  lookupThreepids(
    pairs: ReadonlyArray<readonly [string, string]>,
  ): Promise<Array<{ medium: string; address: string; mxid: string }>>;
}

function toRecord(r: {
  medium: string;
  address: string;
  mxid: string;
  ts: number;
  not_before: number;
  not_after: number;
  signed_json: string | null;
}): AssociationRecord {
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
    const r = await this.db
      .selectFrom("associations")
      .select(["medium", "address", "mxid", "ts", "not_before", "not_after", "signed_json"])
      .where("medium", "=", medium)
      .where("address", "=", address)
      .executeTakeFirst();
    return r && toRecord(r);
  }

  async bind(a: AssociationRecord, hashFor: (pepper: string) => string, now: number) {
    return this.db.transaction().execute(async (tx) => {
      const row = await tx
        .insertInto("associations")
        .values({
          medium: a.medium,
          address: a.address,
          mxid: a.mxid,
          ts: a.ts,
          not_before: a.notBefore,
          not_after: a.notAfter,
        })
        .onConflict((oc) =>
          oc.columns(["medium", "address"]).doUpdateSet({
            mxid: a.mxid,
            ts: a.ts,
            not_before: a.notBefore,
            not_after: a.notAfter,
            signed_json: null,
          }),
        )
        .returning("id")
        .executeTakeFirstOrThrow();
      const peppers = await tx.selectFrom("lookup_peppers").select(["id", "pepper"]).execute();
      const values = peppers.map((p) => ({
        pepper_id: p.id,
        hash: hashFor(p.pepper),
        association_id: row.id,
      }));
      if (values.length) {
        await tx
          .insertInto("association_hashes")
          .values(values)
          .onConflict((oc) => oc.columns(["pepper_id", "hash"]).doNothing())
          .execute();
      }
      await tx
        .deleteFrom("onbind_jobs")
        .where("medium", "=", a.medium)
        .where("address", "=", a.address)
        .execute();
      const invite = await tx
        .selectFrom("invites")
        .select("id")
        .where("medium", "=", a.medium)
        .where("address", "=", a.address)
        .limit(1)
        .executeTakeFirst();
      if (!invite) return { queued: false };
      await tx
        .insertInto("onbind_jobs")
        .values({ medium: a.medium, address: a.address, mxid: a.mxid, next_attempt_ts: now, created_ts: now })
        .execute();
      return { queued: true };
    });
  }

  async unbind(medium: string, address: string, mxid: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const res = await tx
        .deleteFrom("associations")
        .where("medium", "=", medium)
        .where("address", "=", address)
        .where("mxid", "=", mxid)
        .executeTakeFirst();
      const removed = Number(res.numDeletedRows) > 0;
      if (removed) {
        await tx
          .deleteFrom("onbind_jobs")
          .where("medium", "=", medium)
          .where("address", "=", address)
          .where("mxid", "=", mxid)
          .execute();
      }
      return removed;
    });
  }

  async lookupHashes(pepperId: number, hashes: readonly string[]) {
    if (hashes.length === 0) return [];
    const list =
      this.dialect === "sqlite"
        ? sql`(select value from json_each(${JSON.stringify(hashes)}))`
        : sql`(select unnest(${sql.val(hashes)}::text[]))`;
    const { rows } = await sql<{ hash: string; mxid: string }>`
      select h.hash as hash, a.mxid as mxid
      from association_hashes h join associations a on a.id = h.association_id
      where h.pepper_id = ${pepperId} and h.hash in ${list}`.execute(this.db);
    return rows;
  }

  async lookupThreepids(pairs: ReadonlyArray<readonly [string, string]>) {
    if (pairs.length === 0) return [];
    const query =
      this.dialect === "sqlite"
        ? sql<{ medium: string; address: string; mxid: string }>`
            select a.medium as medium, a.address as address, a.mxid as mxid
            from json_each(${JSON.stringify(pairs)}) j
            join associations a on a.medium = json_extract(j.value, '$[0]') and a.address = json_extract(j.value, '$[1]')`
        : sql<{ medium: string; address: string; mxid: string }>`
            select a.medium as medium, a.address as address, a.mxid as mxid
            from unnest(${sql.val(pairs.map((p) => p[0]))}::text[], ${sql.val(pairs.map((p) => p[1]))}::text[]) as q(medium, address)
            join associations a on a.medium = q.medium and a.address = q.address`;
    const { rows } = await query.execute(this.db);
    return rows;
  }
}
