import type { Kysely, Migration, MigrationProvider } from "kysely";

export type Dialect = "sqlite" | "postgres";

/** The column type of an auto-increment primary key in the dialect's idiom. */
function idType(dialect: Dialect) {
  return dialect === "sqlite" ? ("integer" as const) : ("bigserial" as const);
}

type Step = (db: Kysely<unknown>, dialect: Dialect) => Promise<void>;

/** Versioned schema steps, applied in name order. Never edit a released step: add a new one. */
const STEPS: Record<string, Step> = {
  "0001_foundation": async (db, dialect) => {
    const id = idType(dialect);
    await db.schema
      .createTable("signing_keys")
      .addColumn("public_key", "text", (c) => c.primaryKey())
      .addColumn("key_id", "text", (c) => c.notNull())
      .addColumn("created_ts", "bigint", (c) => c.notNull())
      .addColumn("revoked_ts", "bigint")
      .execute();
    await db.schema
      .createTable("ephemeral_keys")
      .addColumn("public_key", "text", (c) => c.primaryKey())
      .addColumn("created_ts", "bigint", (c) => c.notNull())
      .addColumn("verify_count", "integer", (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema
      .createTable("invites")
      .addColumn("id", id, (c) => (dialect === "sqlite" ? c.primaryKey().autoIncrement() : c.primaryKey()))
      .addColumn("token", "text", (c) => c.notNull().unique())
      .addColumn("medium", "text", (c) => c.notNull())
      .addColumn("address", "text", (c) => c.notNull())
      .addColumn("room_id", "text", (c) => c.notNull())
      .addColumn("sender", "text", (c) => c.notNull())
      .addColumn("ephemeral_public_key", "text", (c) => c.notNull())
      .addColumn("params_json", "text", (c) => c.notNull())
      .addColumn("received_ts", "bigint", (c) => c.notNull())
      .addColumn("sent_ts", "bigint")
      .execute();
    await db.schema.createIndex("invites_medium_address").on("invites").columns(["medium", "address"]).execute();
    await db.schema
      .createTable("associations")
      .addColumn("id", id, (c) => (dialect === "sqlite" ? c.primaryKey().autoIncrement() : c.primaryKey()))
      .addColumn("medium", "text", (c) => c.notNull())
      .addColumn("address", "text", (c) => c.notNull())
      .addColumn("lookup_hash", "text", (c) => c.notNull())
      .addColumn("mxid", "text", (c) => c.notNull())
      .addColumn("ts", "bigint", (c) => c.notNull())
      .addColumn("not_before", "bigint", (c) => c.notNull())
      .addColumn("not_after", "bigint", (c) => c.notNull())
      .addUniqueConstraint("associations_medium_address", ["medium", "address"])
      .execute();
    await db.schema.createIndex("associations_lookup_hash").on("associations").column("lookup_hash").execute();
  },
};

/** A kysely MigrationProvider that hands each step the dialect it runs on. */
export class SeraphMigrations implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const out: Record<string, Migration> = {};
    for (const [name, step] of Object.entries(STEPS)) {
      out[name] = { up: (db) => step(db, this.dialect) };
    }
    return out;
  }
}
