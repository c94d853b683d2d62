import type { Kysely, Selectable } from "kysely";
import type { Database } from "./schema.js";

/** Rows per INSERT statement (3 parameters each). */
const INSERT_CHUNK = 1000;

export interface AssociationRow {
  id: number;
  medium: string;
  address: string;
}

export interface PepperRecord {
  id: number;
  pepper: string;
  state: "pending" | "current" | "previous";
  createdTs: number;
  activatedTs: number | null;
  retiredTs: number | null;
  rehashCursor: number;
}

/** Lookup peppers and the per-pepper hashes of associations. */
export interface PepperRepository {
  /** Every pepper that is not deleted: the current one, a pending one, previous ones. */
  live(): Promise<PepperRecord[]>;
  /** Inserts a pepper in `state` unless one in that state exists (race-safe for `current` and `pending`). */
  insertIfAbsent(pepper: string, state: "current" | "pending", now: number): Promise<void>;
  /** The next `limit` associations with an id above `afterId`, in id order (one index range scan). */
  associationsAfter(afterId: number, limit: number): Promise<AssociationRow[]>;
  /** Associations bound (or rebound) at or after `sinceTs`. */
  associationsSince(sinceTs: number): Promise<AssociationRow[]>;
  /** Stores hashes under a pepper (existing ones are kept) and, when given, moves its rehash cursor forward. */
  addHashes(
    pepperId: number,
    rows: ReadonlyArray<{ associationId: number; hash: string }>,
    cursor?: number,
  ): Promise<void>;
  /** Makes the pending pepper current and the current one previous (in one transaction). */
  activate(pendingId: number, now: number): Promise<boolean>;
  /** Deletes up to `limit` hashes of a retired pepper; deletes the pepper when none remain. Returns rows deleted. */
  dropRetired(pepperId: number, limit: number): Promise<number>;
}

function toRecord(r: Selectable<Database["lookup_peppers"]>): PepperRecord {
  return {
    id: r.id,
    pepper: r.pepper,
    state: r.state,
    createdTs: r.created_ts,
    activatedTs: r.activated_ts,
    retiredTs: r.retired_ts,
    rehashCursor: r.rehash_cursor,
  };
}

export class KyselyPepperRepository implements PepperRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async live(): Promise<PepperRecord[]> {
    const rows = await this.db.selectFrom("lookup_peppers").selectAll().orderBy("id").execute();
    return rows.map(toRecord);
  }

  async insertIfAbsent(pepper: string, state: "current" | "pending", now: number): Promise<void> {
    // The partial unique index on state makes this safe when several instances race.
    await this.db
      .insertInto("lookup_peppers")
      .values({
        pepper,
        state,
        created_ts: now,
        activated_ts: state === "current" ? now : null,
        retired_ts: null,
      })
      .onConflict((oc) => oc.doNothing())
      .execute();
  }

  async associationsAfter(afterId: number, limit: number): Promise<AssociationRow[]> {
    return this.db
      .selectFrom("associations")
      .select(["id", "medium", "address"])
      .where("id", ">", afterId)
      .orderBy("id")
      .limit(limit)
      .execute();
  }

  async associationsSince(sinceTs: number): Promise<AssociationRow[]> {
    return this.db
      .selectFrom("associations")
      .select(["id", "medium", "address"])
      .where("ts", ">=", sinceTs)
      .execute();
  }

  async addHashes(
    pepperId: number,
    rows: ReadonlyArray<{ associationId: number; hash: string }>,
    cursor?: number,
  ): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      // Chunks keep every statement far below the bound-parameter limits (SQLite 32 766, PostgreSQL 65 535).
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
        await tx
          .insertInto("association_hashes")
          .values(
            rows
              .slice(i, i + INSERT_CHUNK)
              .map((r) => ({ pepper_id: pepperId, hash: r.hash, association_id: r.associationId })),
          )
          .onConflict((oc) => oc.columns(["pepper_id", "hash"]).doNothing())
          .execute();
      }
      if (cursor !== undefined) {
        await tx
          .updateTable("lookup_peppers")
          .set({ rehash_cursor: cursor })
          .where("id", "=", pepperId)
          .where("rehash_cursor", "<", cursor)
          .execute();
      }
    });
  }

  async activate(pendingId: number, now: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      // Retire the current pepper first (the unique index allows one current), then promote the pending one
      // only if it is still pending: a second instance doing the same finds nothing to promote.
      const pending = await tx
        .selectFrom("lookup_peppers")
        .select("id")
        .where("id", "=", pendingId)
        .where("state", "=", "pending")
        .executeTakeFirst();
      if (!pending) return false;
      await tx
        .updateTable("lookup_peppers")
        .set({ state: "previous", retired_ts: now })
        .where("state", "=", "current")
        .where("id", "!=", pendingId)
        .execute();
      const promoted = await tx
        .updateTable("lookup_peppers")
        .set({ state: "current", activated_ts: now })
        .where("id", "=", pendingId)
        .where("state", "=", "pending")
        .executeTakeFirst();
      return Number(promoted.numUpdatedRows) === 1;
    });
  }

  async dropRetired(pepperId: number, limit: number): Promise<number> {
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
    const n = Number(res.numDeletedRows);
    if (n < limit) {
      await this.db
        .deleteFrom("lookup_peppers")
        .where("id", "=", pepperId)
        .where("state", "=", "previous")
        .execute();
    }
    return n;
  }
}
