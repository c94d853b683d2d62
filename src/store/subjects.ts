import type { Kysely, Transaction } from "kysely";
import { lockHashVersion } from "./association-hashes.js";
import type { Dialect } from "./dialect.js";
import type { Database } from "./schema.js";

/** One person, by a 3PID, a Matrix ID, or both. */
export interface SubjectSelector {
  threepid?: { medium: string; address: string } | undefined;
  mxid?: string | undefined;
}

/** Everything stored about a subject, row by row (secrets that only authenticate are left out). */
export interface SubjectRows {
  associations: Array<Record<string, unknown>>;
  association_hashes: Array<Record<string, unknown>>;
  accounts: Array<Record<string, unknown>>;
  access_tokens: Array<Record<string, unknown>>;
  accepted_terms: Array<Record<string, unknown>>;
  validation_sessions: Array<Record<string, unknown>>;
  invites_to: Array<Record<string, unknown>>;
  invites_from: Array<Record<string, unknown>>;
  ephemeral_keys: Array<Record<string, unknown>>;
  onbind_jobs: Array<Record<string, unknown>>;
}

/** Rows removed per table by an erasure. */
export type ErasureCounts = Record<
  | "associations"
  | "association_hashes"
  | "accounts"
  | "access_tokens"
  | "accepted_terms"
  | "validation_sessions"
  | "invites"
  | "ephemeral_keys"
  | "onbind_jobs",
  number
>;

type Db = Kysely<Database> | Transaction<Database>;

const NONE = "\u0000none";

/**
 * Personal data of one subject across every table (GDPR articles 15 and 17). Reads and the erasure run in
 * one transaction each, on SQLite and PostgreSQL alike.
 */
export class KyselySubjectRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  private async associationIds(db: Db, s: SubjectSelector): Promise<number[]> {
    const rows = await db
      .selectFrom("associations")
      .select("id")
      .where((eb) =>
        eb.or([
          eb.and([
            eb("medium", "=", s.threepid?.medium ?? NONE),
            eb("address", "=", s.threepid?.address ?? NONE),
          ]),
          eb("mxid", "=", s.mxid ?? NONE),
        ]),
      )
      .execute();
    return rows.map((r) => Number(r.id));
  }

  private async invitesOf(db: Db, s: SubjectSelector) {
    const to = await db
      .selectFrom("invites")
      .selectAll()
      .where("medium", "=", s.threepid?.medium ?? NONE)
      .where("address", "=", s.threepid?.address ?? NONE)
      .orderBy("id")
      .execute();
    const from = await db
      .selectFrom("invites")
      .selectAll()
      .where("sender", "=", s.mxid ?? NONE)
      .orderBy("id")
      .execute();
    return { to, from };
  }

  async export(s: SubjectSelector): Promise<SubjectRows> {
    return this.db.transaction().execute(async (tx) => {
      const ids = await this.associationIds(tx, s);
      const user = s.mxid ?? NONE;
      const address = s.threepid?.address ?? NONE;
      const medium = s.threepid?.medium ?? NONE;
      const { to, from } = await this.invitesOf(tx, s);
      const keys = [...to, ...from].map((i) => i.ephemeral_public_key);
      const shapeInvite = (i: (typeof to)[number]) => ({
        id: Number(i.id),
        medium: i.medium,
        address: i.address,
        room_id: i.room_id,
        sender: i.sender,
        ephemeral_public_key: i.ephemeral_public_key,
        params: JSON.parse(i.params_json) as unknown,
        received_ts: Number(i.received_ts),
      });
      return {
        associations: ids.length
          ? await tx.selectFrom("associations").selectAll().where("id", "in", ids).orderBy("id").execute()
          : [],
        association_hashes: ids.length
          ? await tx.selectFrom("association_hashes").selectAll().where("association_id", "in", ids).execute()
          : [],
        accounts: await tx.selectFrom("accounts").selectAll().where("user_id", "=", user).execute(),
        access_tokens: await tx
          .selectFrom("access_tokens")
          .select(["token_hash", "user_id", "created_ts", "expires_ts"])
          .where("user_id", "=", user)
          .execute(),
        accepted_terms: await tx
          .selectFrom("accepted_terms")
          .selectAll()
          .where("user_id", "=", user)
          .execute(),
        validation_sessions: await tx
          .selectFrom("validation_sessions")
          .select([
            "sid",
            "medium",
            "address",
            "send_attempt",
            "next_link",
            "failed_attempts",
            "validated_ts",
          ])
          .select(["created_ts", "mtime"])
          .where("medium", "=", medium)
          .where("address", "=", address)
          .execute(),
        invites_to: to.map(shapeInvite),
        invites_from: from.map(shapeInvite),
        ephemeral_keys: keys.length
          ? await tx.selectFrom("ephemeral_keys").selectAll().where("public_key", "in", keys).execute()
          : [],
        onbind_jobs: await tx
          .selectFrom("onbind_jobs")
          .selectAll()
          .where((eb) =>
            eb.or([eb.and([eb("medium", "=", medium), eb("address", "=", address)]), eb("mxid", "=", user)]),
          )
          .execute(),
      };
    });
  }

  /** Deletes every row about the subject in one transaction; returns the rows removed per table. */
  async erase(s: SubjectSelector): Promise<ErasureCounts> {
    return this.db.transaction().execute(async (tx) => {
      const n = (r: { numDeletedRows: bigint }) => Number(r.numDeletedRows);
      const user = s.mxid ?? NONE;
      const address = s.threepid?.address ?? NONE;
      const medium = s.threepid?.medium ?? NONE;
      await lockHashVersion(tx);
      const ids = await this.associationIds(tx, s);
      const { to, from } = await this.invitesOf(tx, s);
      const inviteIds = [...to, ...from].map((i) => Number(i.id));
      const keys = [...to, ...from].map((i) => i.ephemeral_public_key);
      const counts: ErasureCounts = {
        association_hashes: ids.length
          ? n(await tx.deleteFrom("association_hashes").where("association_id", "in", ids).executeTakeFirst())
          : 0,
        associations: ids.length
          ? n(await tx.deleteFrom("associations").where("id", "in", ids).executeTakeFirst())
          : 0,
        access_tokens: n(await tx.deleteFrom("access_tokens").where("user_id", "=", user).executeTakeFirst()),
        accepted_terms: n(
          await tx.deleteFrom("accepted_terms").where("user_id", "=", user).executeTakeFirst(),
        ),
        accounts: n(await tx.deleteFrom("accounts").where("user_id", "=", user).executeTakeFirst()),
        validation_sessions: n(
          await tx
            .deleteFrom("validation_sessions")
            .where("medium", "=", medium)
            .where("address", "=", address)
            .executeTakeFirst(),
        ),
        invites: inviteIds.length
          ? n(await tx.deleteFrom("invites").where("id", "in", inviteIds).executeTakeFirst())
          : 0,
        ephemeral_keys: keys.length
          ? n(await tx.deleteFrom("ephemeral_keys").where("public_key", "in", keys).executeTakeFirst())
          : 0,
        onbind_jobs: n(
          await tx
            .deleteFrom("onbind_jobs")
            .where((eb) =>
              eb.or([
                eb.and([eb("medium", "=", medium), eb("address", "=", address)]),
                eb("mxid", "=", user),
              ]),
            )
            .executeTakeFirst(),
        ),
      };
      return counts;
    });
  }

  /**
   * Accounts older than `createdBefore` with no access token and no binding (and their accepted terms).
   * The candidates' rows are locked first (PostgreSQL; SQLite's writers take turns anyway), which waits
   * for a login holding one (`createToken` locks its account's row `FOR KEY SHARE`); the DELETE, a later statement,
   * then sees that login's token and keeps the account.
   */
  async purgeStaleAccounts(createdBefore: number, limit = 1000): Promise<number> {
    const postgres = this.dialect === "postgres";
    return this.db.transaction().execute(async (tx) => {
      const stale = (db: Db) =>
        db
          .selectFrom("accounts as a")
          .select("a.user_id")
          .where("a.created_ts", "<", createdBefore)
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(
                selectFrom("access_tokens")
                  .select("token_hash")
                  .whereRef("access_tokens.user_id", "=", "a.user_id"),
              ),
            ),
          )
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(selectFrom("associations").select("id").whereRef("associations.mxid", "=", "a.user_id")),
            ),
          );
      let candidates: string[] | undefined;
      if (postgres) {
        candidates = (await stale(tx).orderBy("a.user_id").limit(limit).forUpdate().execute()).map(
          (r) => r.user_id,
        );
        if (candidates.length === 0) return 0;
      }
      // On PostgreSQL a new statement, so it sees the tokens of logins that held a candidate's row.
      const gone = await tx
        .deleteFrom("accounts")
        .where(
          "user_id",
          "in",
          candidates ? stale(tx).where("a.user_id", "in", candidates) : stale(tx).limit(limit),
        )
        .returning("user_id")
        .execute();
      const users = gone.map((r) => r.user_id);
      if (users.length > 0) await tx.deleteFrom("accepted_terms").where("user_id", "in", users).execute();
      return users.length;
    });
  }

  /** Deletes access tokens that expired before `now`. */
  async purgeExpiredTokens(now: number, limit = 1000): Promise<number> {
    const res = await this.db
      .deleteFrom("access_tokens")
      .where(
        "token_hash",
        "in",
        this.db
          .selectFrom("access_tokens")
          .select("token_hash")
          .where("expires_ts", "is not", null)
          .where("expires_ts", "<", now)
          .limit(limit),
      )
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
