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
  /** Language of the session's messages and pages; null: the brand's default. */
  lang?: string | null;
  /** Brand of the session's messages and pages; null: the default brand. */
  brand?: string | null;
}

export interface SessionRepository {
  findBySid(sid: string): Promise<SessionRecord | undefined>;
  findByThreepidSecret(
    medium: string,
    address: string,
    clientSecret: string,
  ): Promise<SessionRecord | undefined>;
  /**
   * Inserts a session unless one exists for the same (medium, address, client_secret); returns whether it
   * was inserted. Concurrent callers cannot both insert.
   */
  insertIfAbsent(session: SessionRecord): Promise<boolean>;
  delete(sid: string): Promise<void>;
  /** Raises send_attempt to `sendAttempt` if it is lower (atomically); returns whether it was raised. */
  raiseSendAttempt(sid: string, sendAttempt: number, nextLink: string | null, now: number): Promise<boolean>;
  /** Undoes `raiseSendAttempt` after a send that failed: send_attempt, next_link and mtime as they were. */
  restoreSendState(
    sid: string,
    from: number,
    before: Pick<SessionRecord, "sendAttempt" | "nextLink" | "mtime">,
  ): Promise<void>;
  /**
   * Uses up one token attempt if fewer than `max` were used (atomically, so parallel guesses cannot exceed
   * the limit); returns whether an attempt was available.
   */
  takeAttempt(sid: string, max: number): Promise<boolean>;
  /** Marks validated (idempotent), touches mtime, and gives back the attempt the right token used. */
  markValidated(sid: string, now: number): Promise<void>;
  /** Deletes sessions last modified before `olderThan`; returns how many. */
  deleteStale(olderThan: number, limit: number): Promise<number>;
}

type Row = Database["validation_sessions"];

function toRecord(
  r: Omit<Row, "failed_attempts" | "lang" | "brand"> & {
    failed_attempts: number;
    lang?: string | null;
    brand?: string | null;
  },
): SessionRecord {
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
    lang: r.lang ?? null,
    brand: r.brand ?? null,
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

  async insertIfAbsent(s: SessionRecord): Promise<boolean> {
    const res = await this.db
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
        lang: s.lang ?? null,
        brand: s.brand ?? null,
      })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async delete(sid: string): Promise<void> {
    await this.db.deleteFrom("validation_sessions").where("sid", "=", sid).execute();
  }

  async raiseSendAttempt(
    sid: string,
    sendAttempt: number,
    nextLink: string | null,
    now: number,
  ): Promise<boolean> {
    const res = await this.db
      .updateTable("validation_sessions")
      .set((eb) => ({
        send_attempt: sendAttempt,
        next_link: nextLink === null ? eb.ref("next_link") : eb.val(nextLink),
        mtime: now,
      }))
      .where("sid", "=", sid)
      .where("send_attempt", "<", sendAttempt)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  async restoreSendState(
    sid: string,
    from: number,
    before: Pick<SessionRecord, "sendAttempt" | "nextLink" | "mtime">,
  ): Promise<void> {
    await this.db
      .updateTable("validation_sessions")
      .set({ send_attempt: before.sendAttempt, next_link: before.nextLink, mtime: before.mtime })
      .where("sid", "=", sid)
      .where("send_attempt", "=", from)
      .execute();
  }

  async takeAttempt(sid: string, max: number): Promise<boolean> {
    const res = await this.db
      .updateTable("validation_sessions")
      .set((eb) => ({ failed_attempts: eb("failed_attempts", "+", 1) }))
      .where("sid", "=", sid)
      .where("failed_attempts", "<", max)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  async markValidated(sid: string, now: number): Promise<void> {
    await this.db
      .updateTable("validation_sessions")
      .set((eb) => ({
        validated_ts: eb.fn.coalesce("validated_ts", eb.val(now)),
        mtime: now,
        failed_attempts: eb("failed_attempts", "-", 1),
      }))
      .where("sid", "=", sid)
      .execute();
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
