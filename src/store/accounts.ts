import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

/** Accounts, their access tokens (hashed) and the terms they accepted. */
export interface AccountRepository {
  /** Creates the account if needed and stores a token hash for it. */
  createToken(userId: string, tokenHash: string, now: number, expiresTs: number | null): Promise<void>;
  /** The user of a live token, or undefined when unknown or expired. */
  userForToken(tokenHash: string, now: number): Promise<string | undefined>;
  deleteToken(tokenHash: string): Promise<void>;
  acceptedUrls(userId: string): Promise<string[]>;
  addAcceptedUrls(userId: string, urls: readonly string[], now: number): Promise<void>;
}

export class KyselyAccountRepository implements AccountRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async createToken(userId: string, tokenHash: string, now: number, expiresTs: number | null): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto("accounts")
        .values({ user_id: userId, created_ts: now })
        .onConflict((oc) => oc.column("user_id").doNothing())
        .execute();
      await tx
        .insertInto("access_tokens")
        .values({ token_hash: tokenHash, user_id: userId, created_ts: now, expires_ts: expiresTs })
        .execute();
    });
  }

  async userForToken(tokenHash: string, now: number): Promise<string | undefined> {
    const row = await this.db
      .selectFrom("access_tokens")
      .select(["user_id", "expires_ts"])
      .where("token_hash", "=", tokenHash)
      .executeTakeFirst();
    if (!row || (row.expires_ts !== null && row.expires_ts <= now)) return undefined;
    return row.user_id;
  }

  async deleteToken(tokenHash: string): Promise<void> {
    await this.db.deleteFrom("access_tokens").where("token_hash", "=", tokenHash).execute();
  }

  async acceptedUrls(userId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom("accepted_terms")
      .select("url")
      .where("user_id", "=", userId)
      .execute();
    return rows.map((r) => r.url);
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
