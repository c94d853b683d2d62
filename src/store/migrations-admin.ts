import type { Kysely } from "kysely";
import type { Dialect } from "./dialect.js";

/** Migration `0120_admin`: operator tokens, audit log, suppressions, blocklist, admin secrets. */
export async function adminMigration(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const id = dialect === "sqlite" ? ("integer" as const) : ("bigserial" as const);
  await db.schema
    .createTable("admin_tokens")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("token_hash", "text", (c) => c.notNull().unique())
    .addColumn("created_ts", "bigint", (c) => c.notNull())
    .addColumn("revoked_ts", "bigint")
    .execute();
  await db.schema
    .createTable("audit_log")
    .addColumn("id", id, (c) => (dialect === "sqlite" ? c.primaryKey().autoIncrement() : c.primaryKey()))
    .addColumn("ts", "bigint", (c) => c.notNull())
    .addColumn("actor", "text", (c) => c.notNull())
    .addColumn("action", "text", (c) => c.notNull())
    .addColumn("target_redacted", "text")
    .addColumn("target_hmac", "text")
    .addColumn("result", "text", (c) => c.notNull())
    .addColumn("detail", "text")
    .execute();
  await db.schema.createIndex("audit_log_target").on("audit_log").column("target_hmac").execute();
  await db.schema
    .createTable("suppressions")
    .addColumn("address_hmac", "text", (c) => c.primaryKey())
    .addColumn("medium", "text", (c) => c.notNull())
    .addColumn("redacted", "text", (c) => c.notNull())
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("created_ts", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createTable("blocklist")
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("value", "text", (c) => c.notNull())
    .addColumn("reason", "text")
    .addColumn("created_ts", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("blocklist_pk", ["kind", "value"])
    .execute();
  await db.schema
    .createTable("admin_secrets")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("value", "text", (c) => c.notNull())
    .addColumn("created_ts", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("invites_sender").on("invites").column("sender").execute();
  await db.schema.createIndex("associations_mxid").on("associations").column("mxid").execute();
}
