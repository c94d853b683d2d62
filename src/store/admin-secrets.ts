import type { Kysely } from "kysely";
import { adminDb } from "./admin-schema.js";
import type { Database } from "./schema.js";

/** Named random secrets created once and shared by every instance and the CLI. */
export class KyselyAdminSecretRepository {
  private readonly db;
  constructor(db: Kysely<Database>) {
    this.db = adminDb(db);
  }

  /** The secret called `name`, created with `generate()` if absent (the first writer wins). */
  async getOrCreate(name: string, generate: () => string, now: number): Promise<string> {
    await this.db
      .insertInto("admin_secrets")
      .values({ name, value: generate(), created_ts: now })
      .onConflict((oc) => oc.column("name").doNothing())
      .execute();
    const row = await this.db
      .selectFrom("admin_secrets")
      .select("value")
      .where("name", "=", name)
      .executeTakeFirstOrThrow();
    return row.value;
  }
}
