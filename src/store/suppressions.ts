import type { Kysely } from "kysely";
import { adminDb } from "./admin-schema.js";
import type { Database } from "./schema.js";

export interface Suppression {
  addressHmac: string;
  medium: string;
  redacted: string;
  source: string;
  createdTs: number;
}

/** "Never invite me": addresses kept only as a keyed hash plus a redacted form. */
export class KyselySuppressionRepository {
  private readonly db;
  constructor(db: Kysely<Database>) {
    this.db = adminDb(db);
  }

  /** Adds the address (idempotent); returns whether it was new. */
  async add(s: Suppression): Promise<boolean> {
    const res = await this.db
      .insertInto("suppressions")
      .values({
        address_hmac: s.addressHmac,
        medium: s.medium,
        redacted: s.redacted,
        source: s.source,
        created_ts: s.createdTs,
      })
      .onConflict((oc) => oc.column("address_hmac").doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async remove(addressHmac: string): Promise<boolean> {
    const res = await this.db
      .deleteFrom("suppressions")
      .where("address_hmac", "=", addressHmac)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async has(addressHmac: string): Promise<boolean> {
    const row = await this.db
      .selectFrom("suppressions")
      .select("created_ts")
      .where("address_hmac", "=", addressHmac)
      .executeTakeFirst();
    return row !== undefined;
  }

  async list(limit: number, after?: number): Promise<Suppression[]> {
    let q = this.db.selectFrom("suppressions").selectAll().orderBy("created_ts").limit(limit);
    if (after !== undefined) q = q.where("created_ts", ">", after);
    const rows = await q.execute();
    return rows.map((r) => ({
      addressHmac: r.address_hmac,
      medium: r.medium,
      redacted: r.redacted,
      source: r.source,
      createdTs: Number(r.created_ts),
    }));
  }
}
