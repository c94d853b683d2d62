import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

/** A local 3PID association. */
export interface AssociationRecord {
  medium: string;
  address: string;
  mxid: string;
  ts: number;
  notBefore: number;
  notAfter: number;
}

export interface AssociationRepository {
  /** The association for a 3PID, if any. */
  findByThreepid(medium: string, address: string): Promise<AssociationRecord | undefined>;
}

export class KyselyAssociationRepository implements AssociationRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async findByThreepid(medium: string, address: string): Promise<AssociationRecord | undefined> {
    const r = await this.db
      .selectFrom("associations")
      .select(["medium", "address", "mxid", "ts", "not_before", "not_after"])
      .where("medium", "=", medium)
      .where("address", "=", address)
      .executeTakeFirst();
    return (
      r && {
        medium: r.medium,
        address: r.address,
        mxid: r.mxid,
        ts: r.ts,
        notBefore: r.not_before,
        notAfter: r.not_after,
      }
    );
  }
}
