import type { Kysely } from "kysely";
import type { Dialect } from "./dialect.js";
import { hotSelect } from "./hot-select.js";
import type { Database } from "./schema.js";

/** Every authenticated request reads these two. */
const TOKEN_USER = hotSelect<{ user_id: string; expires_ts: number | null }>({
  sqlite: "select user_id, expires_ts from access_tokens where token_hash = ?",
  postgres: "select user_id, expires_ts from access_tokens where token_hash = $1",
});
const ACCEPTED_URLS = hotSelect<{ url: string }>({
  sqlite: "select url from accepted_terms where user_id = ?",
  postgres: "select url from accepted_terms where user_id = $1",
});

/**
 * Creates the accounts that are missing and locks every one of them for the rest of the transaction: call
 * it before writing access tokens for them. An existing account is updated (to itself), not skipped, so
 * that its row stays locked until the tokens are in: the purge of stale accounts locks the rows it may
 * delete, and so waits for the tokens and keeps the accounts (PostgreSQL; SQLite's writers take turns).
 *
 *   await holdAccounts(tx, [{ user_id: "@a:hs", created_ts: now }]);
 */
export async function holdAccounts(
  tx: Kysely<Database>,
  accounts: ReadonlyArray<{ user_id: string; created_ts: number }>,
): Promise<void> {
  // One row per user: an upsert may not update the same row twice in one statement.
  const once = [...new Map(accounts.map((a) => [a.user_id, a])).values()];
  if (once.length === 0) return;
  await tx
    .insertInto("accounts")
    .values(once)
    .onConflict((oc) => oc.column("user_id").doUpdateSet((eb) => ({ user_id: eb.ref("excluded.user_id") })))
    .execute();
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
      await holdAccounts(tx, [{ user_id: userId, created_ts: now }]);
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
