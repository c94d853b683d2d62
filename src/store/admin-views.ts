import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

export interface BindingRow {
  id: number;
  medium: string;
  address: string;
  mxid: string;
  ts: number;
}

export interface PendingInviteRow {
  id: number;
  medium: string;
  address: string;
  roomId: string;
  sender: string;
  ephemeralPublicKey: string;
  receivedTs: number;
}

export interface OnbindJobRow {
  id: number;
  medium: string;
  address: string;
  mxid: string;
  attempts: number;
  nextAttemptTs: number;
  lastError: string | null;
  createdTs: number;
}

export interface Page {
  /** Rows with an id above this (the previous page's `next_from`). */
  after?: number | undefined;
  limit: number;
}

/** The operator's views and actions on associations, pending invites and onbind jobs. */
export class KyselyAdminViewRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async bindings(
    f: { medium?: string | undefined; address?: string | undefined; mxid?: string | undefined },
    p: Page,
  ): Promise<BindingRow[]> {
    let q = this.db
      .selectFrom("associations")
      .select(["id", "medium", "address", "mxid", "ts"])
      .orderBy("id")
      .limit(p.limit);
    if (p.after !== undefined) q = q.where("id", ">", p.after);
    if (f.medium !== undefined) q = q.where("medium", "=", f.medium);
    if (f.address !== undefined) q = q.where("address", "=", f.address);
    if (f.mxid !== undefined) q = q.where("mxid", "=", f.mxid);
    const rows = await q.execute();
    return rows.map((r) => ({ ...r, id: Number(r.id), ts: Number(r.ts) }));
  }

  async invites(
    f: {
      address?: string | undefined;
      sender?: string | undefined;
      roomId?: string | undefined;
      receivedBefore?: number | undefined;
    },
    p: Page,
  ): Promise<PendingInviteRow[]> {
    let q = this.db
      .selectFrom("invites")
      .select(["id", "medium", "address", "room_id", "sender", "ephemeral_public_key", "received_ts"])
      .orderBy("id")
      .limit(p.limit);
    if (p.after !== undefined) q = q.where("id", ">", p.after);
    if (f.address !== undefined) q = q.where("address", "=", f.address);
    if (f.sender !== undefined) q = q.where("sender", "=", f.sender);
    if (f.roomId !== undefined) q = q.where("room_id", "=", f.roomId);
    if (f.receivedBefore !== undefined) q = q.where("received_ts", "<", f.receivedBefore);
    const rows = await q.execute();
    return rows.map((r) => ({
      id: Number(r.id),
      medium: r.medium,
      address: r.address,
      roomId: r.room_id,
      sender: r.sender,
      ephemeralPublicKey: r.ephemeral_public_key,
      receivedTs: Number(r.received_ts),
    }));
  }

  async invite(id: number): Promise<(PendingInviteRow & { token: string; params: string }) | undefined> {
    const r = await this.db.selectFrom("invites").selectAll().where("id", "=", id).executeTakeFirst();
    if (!r) return undefined;
    return {
      id: Number(r.id),
      medium: r.medium,
      address: r.address,
      roomId: r.room_id,
      sender: r.sender,
      ephemeralPublicKey: r.ephemeral_public_key,
      receivedTs: Number(r.received_ts),
      token: r.token,
      params: r.params_json,
    };
  }

  /**
   * Revokes an invite: deletes it and its ephemeral key, and the 3PID's onbind job when no other invite is
   * left for it, in one transaction. Returns the revoked invite, or undefined if there was none.
   */
  async revokeInvite(id: number): Promise<PendingInviteRow | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx.selectFrom("invites").selectAll().where("id", "=", id).executeTakeFirst();
      if (!r) return undefined;
      await tx.deleteFrom("invites").where("id", "=", id).execute();
      await tx.deleteFrom("ephemeral_keys").where("public_key", "=", r.ephemeral_public_key).execute();
      const others = await tx
        .selectFrom("invites")
        .select("id")
        .where("medium", "=", r.medium)
        .where("address", "=", r.address)
        .limit(1)
        .executeTakeFirst();
      if (!others) {
        await tx
          .deleteFrom("onbind_jobs")
          .where("medium", "=", r.medium)
          .where("address", "=", r.address)
          .execute();
      }
      return {
        id: Number(r.id),
        medium: r.medium,
        address: r.address,
        roomId: r.room_id,
        sender: r.sender,
        ephemeralPublicKey: r.ephemeral_public_key,
        receivedTs: Number(r.received_ts),
      };
    });
  }

  /** Replaces an invite's ephemeral key (a resent email carries a new private key). */
  async replaceEphemeralKey(id: number, oldKey: string, newKey: string, now: number): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto("ephemeral_keys").values({ public_key: newKey, created_ts: now }).execute();
      await tx.updateTable("invites").set({ ephemeral_public_key: newKey }).where("id", "=", id).execute();
      await tx.deleteFrom("ephemeral_keys").where("public_key", "=", oldKey).execute();
    });
  }

  async onbindJobs(f: { failing?: boolean | undefined }, p: Page): Promise<OnbindJobRow[]> {
    let q = this.db.selectFrom("onbind_jobs").selectAll().orderBy("id").limit(p.limit);
    if (p.after !== undefined) q = q.where("id", ">", p.after);
    if (f.failing) q = q.where("attempts", ">", 0);
    const rows = await q.execute();
    return rows.map((r) => ({
      id: Number(r.id),
      medium: r.medium,
      address: r.address,
      mxid: r.mxid,
      attempts: Number(r.attempts),
      nextAttemptTs: Number(r.next_attempt_ts),
      lastError: r.last_error,
      createdTs: Number(r.created_ts),
    }));
  }

  async onbindJob(id: number): Promise<OnbindJobRow | undefined> {
    const [row] = await this.onbindJobs({}, { after: id - 1, limit: 1 });
    return row?.id === id ? row : undefined;
  }

  /** Makes a job due now (unless an instance holds it); returns whether the job exists. */
  async retryJobNow(id: number, now: number): Promise<boolean> {
    const res = await this.db
      .updateTable("onbind_jobs")
      .set({ next_attempt_ts: now })
      .where("id", "=", id)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async dropJob(id: number): Promise<boolean> {
    const res = await this.db.deleteFrom("onbind_jobs").where("id", "=", id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** Counts for the operator's gauges. */
  async counts(): Promise<{
    associations: number;
    invites: number;
    onbindPending: number;
    onbindFailing: number;
    sessions: number;
  }> {
    const count = async (table: "associations" | "invites" | "onbind_jobs" | "validation_sessions") =>
      Number(
        (
          await this.db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll<number>().as("n"))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const failing = await this.db
      .selectFrom("onbind_jobs")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("attempts", ">", 0)
      .executeTakeFirstOrThrow();
    return {
      associations: await count("associations"),
      invites: await count("invites"),
      onbindPending: await count("onbind_jobs"),
      onbindFailing: Number(failing.n),
      sessions: await count("validation_sessions"),
    };
  }

  /** Creation times of the current lookup pepper and of the newest valid signing key. */
  async keyAges(): Promise<{ pepperTs: number | undefined; signingKeyTs: number | undefined }> {
    const pepper = await this.db
      .selectFrom("lookup_peppers")
      .select(["created_ts", "activated_ts"])
      .where("state", "=", "current")
      .executeTakeFirst();
    const key = await this.db
      .selectFrom("signing_keys")
      .select("created_ts")
      .where("revoked_ts", "is", null)
      .orderBy("created_ts", "desc")
      .limit(1)
      .executeTakeFirst();
    return {
      pepperTs: pepper ? Number(pepper.activated_ts ?? pepper.created_ts) : undefined,
      signingKeyTs: key ? Number(key.created_ts) : undefined,
    };
  }
}
