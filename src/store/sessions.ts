import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

/** A 3PID validation session. */
export interface SessionRecord {
  sid: string;
  medium: string;
  address: string;
  clientSecret: string;
  token: string;
  sendAttempt: number;
  nextLink: string | null;
  failedAttempts: number;
  validatedTs: number | null;
  createdTs: number;
  mtime: number;
}

export interface SessionRepository {
  findBySid(sid: string): Promise<SessionRecord | undefined>;
  findByThreepidSecret(
    medium: string,
    address: string,
    clientSecret: string,
  ): Promise<SessionRecord | undefined>;
  /** Inserts a session, replacing any earlier one for the same (medium, address, client_secret). */
  replace(session: SessionRecord): Promise<void>;
  /** Records a new send attempt (and a possibly new next_link). */
  updateSendAttempt(sid: string, sendAttempt: number, nextLink: string | null, now: number): Promise<void>;
  /** Marks validated (idempotent); touches mtime. */
  markValidated(sid: string, now: number): Promise<void>;
  /** Counts one wrong token; returns the new count. */
  countFailure(sid: string): Promise<number>;
  /** Deletes sessions last modified before `olderThan`; returns how many. */
  deleteStale(olderThan: number, limit: number): Promise<number>;
}

type Row = Database["validation_sessions"];

function toRecord(r: Omit<Row, "failed_attempts"> & { failed_attempts: number }): SessionRecord {
  return {
    sid: r.sid,
    medium: r.medium,
    address: r.address,
    clientSecret: r.client_secret,
    token: r.token,
    sendAttempt: r.send_attempt,
    nextLink: r.next_link,
    failedAttempts: r.failed_attempts,
    validatedTs: r.validated_ts,
    createdTs: r.created_ts,
    mtime: r.mtime,
  };
}

export class KyselySessionRepository implements SessionRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async findBySid(sid: string): Promise<SessionRecord | undefined> {
    const r = await this.db
      .selectFrom("validation_sessions")
      .selectAll()
      .where("sid", "=", sid)
      .executeTakeFirst();
    return r && toRecord(r);
  }

  async findByThreepidSecret(medium: string, address: string, clientSecret: string) {
    const r = await this.db
      .selectFrom("validation_sessions")
      .selectAll()
      .where("medium", "=", medium)
      .where("address", "=", address)
      .where("client_secret", "=", clientSecret)
      .executeTakeFirst();
    return r && toRecord(r);
  }

  async replace(s: SessionRecord): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .deleteFrom("validation_sessions")
        .where("medium", "=", s.medium)
        .where("address", "=", s.address)
        .where("client_secret", "=", s.clientSecret)
        .execute();
      await tx
        .insertInto("validation_sessions")
        .values({
          sid: s.sid,
          medium: s.medium,
          address: s.address,
          client_secret: s.clientSecret,
          token: s.token,
          send_attempt: s.sendAttempt,
          next_link: s.nextLink,
          failed_attempts: s.failedAttempts,
          validated_ts: s.validatedTs,
          created_ts: s.createdTs,
          mtime: s.mtime,
        })
        .execute();
    });
  }

  async updateSendAttempt(
    sid: string,
    sendAttempt: number,
    nextLink: string | null,
    now: number,
  ): Promise<void> {
    await this.db
      .updateTable("validation_sessions")
      .set({ send_attempt: sendAttempt, next_link: nextLink, mtime: now })
      .where("sid", "=", sid)
      .execute();
  }

  async markValidated(sid: string, now: number): Promise<void> {
    await this.db
      .updateTable("validation_sessions")
      .set((eb) => ({ validated_ts: eb.fn.coalesce("validated_ts", eb.val(now)), mtime: now }))
      .where("sid", "=", sid)
      .execute();
  }

  async countFailure(sid: string): Promise<number> {
    await this.db
      .updateTable("validation_sessions")
      .set((eb) => ({ failed_attempts: eb("failed_attempts", "+", 1) }))
      .where("sid", "=", sid)
      .execute();
    const r = await this.db
      .selectFrom("validation_sessions")
      .select("failed_attempts")
      .where("sid", "=", sid)
      .executeTakeFirst();
    return r?.failed_attempts ?? 0;
  }

  async deleteStale(olderThan: number, limit: number): Promise<number> {
    const res = await this.db
      .deleteFrom("validation_sessions")
      .where(
        "sid",
        "in",
        this.db.selectFrom("validation_sessions").select("sid").where("mtime", "<", olderThan).limit(limit),
      )
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
