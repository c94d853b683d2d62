import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

export interface OnbindJob {
  id: number;
  medium: string;
  address: string;
  mxid: string;
  attempts: number;
  createdTs: number;
}

/** Durable onbind deliveries. Jobs are claimed with a lease so that several instances never run one at once. */
export interface OnbindJobRepository {
  /** Claims up to `limit` due jobs until `leaseUntil`; only jobs whose claim succeeded are returned. */
  claimDue(now: number, leaseUntil: number, limit: number): Promise<OnbindJob[]>;
  /** Queues a delivery to `mxid`'s homeserver of the invites waiting for a 3PID, due at once. */
  queue(job: { medium: string; address: string; mxid: string }, now: number): Promise<void>;
  /** Drops the jobs of a 3PID (all, or only those for `mxid`). */
  clearFor(medium: string, address: string, mxid?: string): Promise<void>;
  /** Deletes a delivered job. */
  delete(jobId: number): Promise<void>;
  /** Schedules another attempt. */
  retry(jobId: number, attempts: number, nextAttemptTs: number, error: string): Promise<void>;
  /** Drops a job that will not be retried (its invites stay until they expire). */
  abandon(jobId: number): Promise<void>;
  /** The number of jobs waiting (for metrics and tests). */
  count(): Promise<number>;
}

export class KyselyOnbindJobRepository implements OnbindJobRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async claimDue(now: number, leaseUntil: number, limit: number): Promise<OnbindJob[]> {
    const candidates = await this.db
      .selectFrom("onbind_jobs")
      .select(["id", "medium", "address", "mxid", "attempts", "created_ts"])
      .where("next_attempt_ts", "<=", now)
      .where((eb) => eb.or([eb("locked_until", "is", null), eb("locked_until", "<", now)]))
      .orderBy("next_attempt_ts")
      .limit(limit)
      .execute();
    const claimed: OnbindJob[] = [];
    for (const c of candidates) {
      const res = await this.db
        .updateTable("onbind_jobs")
        .set({ locked_until: leaseUntil })
        .where("id", "=", c.id)
        .where((eb) => eb.or([eb("locked_until", "is", null), eb("locked_until", "<", now)]))
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 1) {
        claimed.push({
          id: c.id,
          medium: c.medium,
          address: c.address,
          mxid: c.mxid,
          attempts: c.attempts,
          createdTs: c.created_ts,
        });
      }
    }
    return claimed;
  }

  async queue(job: { medium: string; address: string; mxid: string }, now: number): Promise<void> {
    await this.db
      .insertInto("onbind_jobs")
      .values({
        medium: job.medium,
        address: job.address,
        mxid: job.mxid,
        next_attempt_ts: now,
        created_ts: now,
      })
      .execute();
  }

  async clearFor(medium: string, address: string, mxid?: string): Promise<void> {
    let q = this.db.deleteFrom("onbind_jobs").where("medium", "=", medium).where("address", "=", address);
    if (mxid !== undefined) q = q.where("mxid", "=", mxid);
    await q.execute();
  }

  async delete(jobId: number): Promise<void> {
    await this.db.deleteFrom("onbind_jobs").where("id", "=", jobId).execute();
  }

  async retry(jobId: number, attempts: number, nextAttemptTs: number, error: string): Promise<void> {
    await this.db
      .updateTable("onbind_jobs")
      .set({ attempts, next_attempt_ts: nextAttemptTs, locked_until: null, last_error: error.slice(0, 500) })
      .where("id", "=", jobId)
      .execute();
  }

  async abandon(jobId: number): Promise<void> {
    await this.db.deleteFrom("onbind_jobs").where("id", "=", jobId).execute();
  }

  async count(): Promise<number> {
    const r = await this.db
      .selectFrom("onbind_jobs")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }
}
