import type { Kysely } from "kysely";
import type { Dialect } from "./dialect.js";
import { hotSelect } from "./hot-select.js";
import type { Database } from "./schema.js";

/** Every authenticated request reads these two. */
const TOKEN_USER = hotSelect<{ user_id: string; expires_ts: number | null }>({
  sqlite: "select user_id, expires_ts from access_tokens where token_hash = ?",
  postgres: "select user_id, expires_ts from access_tokens where token_hash = $1",
  postgresBatch:
    "select q.i::int as i, t.user_id, t.expires_ts from unnest($1::text[]) with ordinality as q(k, i) join access_tokens t on t.token_hash = q.k",
});
const ACCEPTED_URLS = hotSelect<{ url: string }>({
  sqlite: "select url from accepted_terms where user_id = ?",
  postgres: "select url from accepted_terms where user_id = $1",
  postgresBatch:
    "select q.i::int as i, a.url from unnest($1::text[]) with ordinality as q(k, i) join accepted_terms a on a.user_id = q.k",
});

/**
 * Creates the accounts that are missing and holds every one of them for the rest of the transaction: call
 * it before writing access tokens for them. On PostgreSQL the rows are then locked `FOR KEY SHARE`, which
 * leaves no dead row version (an upsert to itself left one per login) and makes the purge of
 * stale accounts, which locks the rows it may delete `FOR UPDATE`, wait for the tokens and keep the
 * accounts. An account the purge deleted between the insert and the lock is created again. SQLite's
 * writers take turns, so the insert alone holds them there.
 *
 *   await holdAccounts(tx, "postgres", [{ user_id: "@a:hs", created_ts: now }]);
 */
export async function holdAccounts(
  tx: Kysely<Database>,
  dialect: Dialect,
  accounts: ReadonlyArray<{ user_id: string; created_ts: number }>,
): Promise<void> {
  let missing = [...new Map(accounts.map((a) => [a.user_id, a])).values()];
  // A later pass inserts what a purge (or an erasure) deleted under the one before; a row it inserts is
  // this transaction's own, so one more pass is nearly always the last (another login may have made the
  // row again first, and a second deletion come in between).
  for (let pass = 0; missing.length > 0; pass++) {
    if (pass === 5) throw new Error("accounts were deleted under every attempt to hold them");
    await tx
      .insertInto("accounts")
      .values(missing)
      .onConflict((oc) => oc.column("user_id").doNothing())
      .execute();
    if (dialect === "sqlite") return;
    const held = await tx
      .selectFrom("accounts")
      .select("user_id")
      .where(
        "user_id",
        "in",
        missing.map((a) => a.user_id),
      )
      // In key order, as the purge locks its candidates: two batches never wait on each other in a circle.
      .orderBy("user_id")
      .forKeyShare()
      .execute();
    const ids = new Set(held.map((r) => r.user_id));
    missing = missing.filter((a) => !ids.has(a.user_id));
  }
}

/** Accounts, their access tokens (hashed) and the terms they accepted. */
export interface AccountRepository {
  /** Creates the account if needed and stores a token hash for it. */
  createToken(userId: string, tokenHash: string, now: number, expiresTs: number | null): Promise<void>;
  /**
   * The user of a live token, or undefined when unknown or expired. `batched`: the read may wait for the
   * other reads of this turn of the event loop (SQLite, see hotSelect); default true.
   */
  userForToken(tokenHash: string, now: number, batched?: boolean): Promise<string | undefined>;
  deleteToken(tokenHash: string): Promise<void>;
  acceptedUrls(userId: string, batched?: boolean): Promise<string[]>;
  addAcceptedUrls(userId: string, urls: readonly string[], now: number): Promise<void>;
}

export class KyselyAccountRepository implements AccountRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async createToken(userId: string, tokenHash: string, now: number, expiresTs: number | null): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await holdAccounts(tx, this.dialect, [{ user_id: userId, created_ts: now }]);
      await tx
        .insertInto("access_tokens")
        .values({ token_hash: tokenHash, user_id: userId, created_ts: now, expires_ts: expiresTs })
        .execute();
    });
  }

  async userForToken(tokenHash: string, now: number, batched?: boolean): Promise<string | undefined> {
    const [row] = await TOKEN_USER(this.db, this.dialect, [tokenHash], batched);
    if (!row || (row.expires_ts !== null && row.expires_ts <= now)) return undefined;
    return row.user_id;
  }

  async deleteToken(tokenHash: string): Promise<void> {
    await this.db.deleteFrom("access_tokens").where("token_hash", "=", tokenHash).execute();
  }

  async acceptedUrls(userId: string, batched?: boolean): Promise<string[]> {
    return (await ACCEPTED_URLS(this.db, this.dialect, [userId], batched)).map((r) => r.url);
  }

  async addAcceptedUrls(userId: string, urls: readonly string[], now: number): Promise<void> {
    if (urls.length === 0) return;
    await this.db
      .insertInto("accepted_terms")
      .values(urls.map((url) => ({ user_id: userId, url, accepted_ts: now })))
      .onConflict((oc) => oc.columns(["user_id", "url"]).doNothing())
      .execute();
  }
}
