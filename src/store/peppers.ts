import type { Kysely, Selectable } from "kysely";
import type { Database } from "./schema.js";

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

/** Lookup peppers (their hashes are in `association-hashes.ts`). */
export interface PepperRepository {
  /** Every pepper that is not deleted: the current one, a pending one, previous ones. */
  live(): Promise<PepperRecord[]>;
  /** Inserts a pepper in `state` unless one in that state exists (race-safe for `current` and `pending`). */
  insertIfAbsent(pepper: string, state: "current" | "pending", now: number): Promise<void>;
  /** The next `limit` associations with an id above `afterId`, in id order (one index range scan). */
  associationsAfter(afterId: number, limit: number): Promise<AssociationRow[]>;
  /** Associations bound (or rebound) at or after `sinceTs`. */
  associationsSince(sinceTs: number): Promise<AssociationRow[]>;
  /** Moves a pending pepper's rehash cursor forward (never back). */
  advanceCursor(pepperId: number, cursor: number): Promise<void>;
  /** Makes the pending pepper current and the current one previous (in one transaction). */
  activate(pendingId: number, now: number): Promise<boolean>;
  /** Deletes a retired (previous) pepper. */
  deleteRetired(pepperId: number): Promise<void>;
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

  async advanceCursor(pepperId: number, cursor: number): Promise<void> {
    await this.db
      .updateTable("lookup_peppers")
      .set({ rehash_cursor: cursor })
      .where("id", "=", pepperId)
      .where("rehash_cursor", "<", cursor)
      .execute();
  }

  async activate(pendingId: number, now: number): Promise<boolean> {
    const inTransaction = (work: (tx: Kysely<Database>) => Promise<boolean>) =>
      this.db.isTransaction ? work(this.db) : this.db.transaction().execute(work);
    return inTransaction(async (tx) => {
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

  async deleteRetired(pepperId: number): Promise<void> {
    await this.db
      .deleteFrom("lookup_peppers")
      .where("id", "=", pepperId)
      .where("state", "=", "previous")
      .execute();
  }
}
