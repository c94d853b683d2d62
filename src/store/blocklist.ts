import type { Kysely } from "kysely";
import { adminDb } from "./admin-schema.js";
import type { Database } from "./schema.js";

export type BlockKind = "server" | "room" | "keyword";
export const BLOCK_KINDS: readonly BlockKind[] = ["server", "room", "keyword"];

export interface BlockEntry {
  kind: BlockKind;
  value: string;
  reason: string | null;
  createdTs: number;
}

/** Homeservers, rooms and keywords whose invites are refused. */
export class KyselyBlocklistRepository {
  private readonly db;
  constructor(db: Kysely<Database>) {
    this.db = adminDb(db);
  }

  async add(e: BlockEntry): Promise<boolean> {
    const res = await this.db
      .insertInto("blocklist")
      .values({ kind: e.kind, value: e.value, reason: e.reason, created_ts: e.createdTs })
      .onConflict((oc) => oc.columns(["kind", "value"]).doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async remove(kind: BlockKind, value: string): Promise<boolean> {
    const res = await this.db
      .deleteFrom("blocklist")
      .where("kind", "=", kind)
      .where("value", "=", value)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async list(kind?: BlockKind): Promise<BlockEntry[]> {
    let q = this.db.selectFrom("blocklist").selectAll().orderBy("kind").orderBy("value");
    if (kind !== undefined) q = q.where("kind", "=", kind);
    const rows = await q.execute();
    return rows.map((r) => ({
      kind: r.kind as BlockKind,
      value: r.value,
      reason: r.reason,
      createdTs: Number(r.created_ts),
    }));
  }
}
