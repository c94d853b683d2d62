import type { Kysely } from "kysely";
import { adminDb } from "./admin-schema.js";
import type { Database } from "./schema.js";

export interface AdminTokenInfo {
  name: string;
  createdTs: number;
  revokedTs: number | null;
}

/** Operator tokens (hashes only). A name can be reused once its token is revoked. */
export class KyselyAdminTokenRepository {
  private readonly db;
  constructor(db: Kysely<Database>) {
    this.db = adminDb(db);
  }

  /** Stores a token hash under `name`; false if a live token already has that name. */
  async create(name: string, tokenHash: string, now: number): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const existing = await tx
        .selectFrom("admin_tokens")
        .select("revoked_ts")
        .where("name", "=", name)
        .executeTakeFirst();
      if (existing && existing.revoked_ts === null) return false;
      if (existing) await tx.deleteFrom("admin_tokens").where("name", "=", name).execute();
      await tx
        .insertInto("admin_tokens")
        .values({ name, token_hash: tokenHash, created_ts: now, revoked_ts: null })
        .execute();
      return true;
    });
  }

  /** Revokes the live token called `name`; returns whether there was one. */
  async revoke(name: string, now: number): Promise<boolean> {
    const res = await this.db
      .updateTable("admin_tokens")
      .set({ revoked_ts: now })
      .where("name", "=", name)
      .where("revoked_ts", "is", null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** The name of the live token with this hash. */
  async nameForHash(tokenHash: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom("admin_tokens")
      .select("name")
      .where("token_hash", "=", tokenHash)
      .where("revoked_ts", "is", null)
      .executeTakeFirst();
    return row?.name;
  }

  async list(): Promise<AdminTokenInfo[]> {
    const rows = await this.db.selectFrom("admin_tokens").selectAll().orderBy("name").execute();
    return rows.map((r) => ({ name: r.name, createdTs: Number(r.created_ts), revokedTs: r.revoked_ts }));
  }
}
