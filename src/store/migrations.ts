import { type Kysely, type Migration, type MigrationProvider, sql } from "kysely";
import { type Dialect, idType } from "./dialect.js";
import { adminMigration } from "./migrations-admin.js";

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
      .execute();
    await db.schema
      .createIndex("invites_medium_address")
      .on("invites")
      .columns(["medium", "address"])
      .execute();
    await db.schema
      .createTable("associations")
      .addColumn("id", id, (c) => (dialect === "sqlite" ? c.primaryKey().autoIncrement() : c.primaryKey()))
      .addColumn("medium", "text", (c) => c.notNull())
      .addColumn("address", "text", (c) => c.notNull())
      .addColumn("mxid", "text", (c) => c.notNull())
      .addColumn("ts", "bigint", (c) => c.notNull())
      .addColumn("not_before", "bigint", (c) => c.notNull())
      .addColumn("not_after", "bigint", (c) => c.notNull())
      .addUniqueConstraint("associations_medium_address", ["medium", "address"])
      .execute();
  },
  "0002_accounts_terms": async (db) => {
    await db.schema
      .createTable("accounts")
      .addColumn("user_id", "text", (c) => c.primaryKey())
      .addColumn("created_ts", "bigint", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("access_tokens")
      .addColumn("token_hash", "text", (c) => c.primaryKey())
      .addColumn("user_id", "text", (c) => c.notNull())
      .addColumn("created_ts", "bigint", (c) => c.notNull())
      .addColumn("expires_ts", "bigint")
      .execute();
    await db.schema.createIndex("access_tokens_user").on("access_tokens").column("user_id").execute();
    await db.schema
      .createTable("accepted_terms")
      .addColumn("user_id", "text", (c) => c.notNull())
      .addColumn("url", "text", (c) => c.notNull())
      .addColumn("accepted_ts", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("accepted_terms_pk", ["user_id", "url"])
      .execute();
  },
  "0003_threepid_lifecycle": async (db, dialect) => {
    const id = idType(dialect);
    await db.schema
      .createTable("validation_sessions")
      .addColumn("sid", "text", (c) => c.primaryKey())
      .addColumn("medium", "text", (c) => c.notNull())
      .addColumn("address", "text", (c) => c.notNull())
      .addColumn("client_secret", "text", (c) => c.notNull())
      .addColumn("token", "text", (c) => c.notNull())
      .addColumn("send_attempt", "bigint", (c) => c.notNull())
      .addColumn("next_link", "text")
      .addColumn("failed_attempts", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("validated_ts", "bigint")
      .addColumn("created_ts", "bigint", (c) => c.notNull())
      .addColumn("mtime", "bigint", (c) => c.notNull())
      .addUniqueConstraint("validation_sessions_threepid_secret", ["medium", "address", "client_secret"])
      .execute();
    await db.schema
      .createIndex("validation_sessions_mtime")
      .on("validation_sessions")
      .column("mtime")
      .execute();
    await db.schema
      .createTable("lookup_peppers")
      .addColumn("id", id, (c) => (dialect === "sqlite" ? c.primaryKey().autoIncrement() : c.primaryKey()))
      .addColumn("pepper", "text", (c) => c.notNull().unique())
      .addColumn("state", "text", (c) => c.notNull())
      .addColumn("created_ts", "bigint", (c) => c.notNull())
      .addColumn("activated_ts", "bigint")
      .addColumn("retired_ts", "bigint")
      .addColumn("rehash_cursor", "bigint", (c) => c.notNull().defaultTo(0))
      .execute();
    // At most one current and one pending pepper, even with several instances starting at once.
    await db.schema
      .createIndex("lookup_peppers_one_per_state")
      .on("lookup_peppers")
      .column("state")
      .unique()
      .where(sql.ref("state"), "in", ["current", "pending"])
      .execute();
    await db.schema
      .createTable("association_hashes")
      .addColumn("pepper_id", "bigint", (c) =>
        c.notNull().references("lookup_peppers.id").onDelete("cascade"),
      )
      .addColumn("hash", "text", (c) => c.notNull())
      .addColumn("association_id", "bigint", (c) =>
        c.notNull().references("associations.id").onDelete("cascade"),
      )
      .addPrimaryKeyConstraint("association_hashes_pk", ["pepper_id", "hash"])
      .execute();
    await db.schema
      .createIndex("association_hashes_association")
      .on("association_hashes")
      .column("association_id")
      .execute();
    await db.schema
      .createTable("onbind_jobs")
      .addColumn("id", id, (c) => (dialect === "sqlite" ? c.primaryKey().autoIncrement() : c.primaryKey()))
      .addColumn("medium", "text", (c) => c.notNull())
      .addColumn("address", "text", (c) => c.notNull())
      .addColumn("mxid", "text", (c) => c.notNull())
      .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("next_attempt_ts", "bigint", (c) => c.notNull())
      .addColumn("locked_until", "bigint")
      .addColumn("last_error", "text")
      .addColumn("created_ts", "bigint", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("onbind_jobs_due").on("onbind_jobs").column("next_attempt_ts").execute();
    await db.schema
      .createIndex("onbind_jobs_threepid")
      .on("onbind_jobs")
      .columns(["medium", "address"])
      .execute();
    // Finds the associations bound while a pepper rotation started (see LookupService.maintain).
    await db.schema.createIndex("associations_ts").on("associations").column("ts").execute();
    await db.schema.createIndex("ephemeral_keys_created").on("ephemeral_keys").column("created_ts").execute();
    await db.schema.createIndex("invites_received").on("invites").column("received_ts").execute();
  },
  "0110_sydent_import": async (db) => {
    // The signed association sydent stored (sgAssoc), served byte for byte by v1 lookup; null = Seraph signs.
    await db.schema.alterTable("associations").addColumn("signed_json", "text").execute();
    await db.schema
      .createTable("sydent_import")
      .addColumn("phase", "text", (c) => c.primaryKey())
      .addColumn("cursor", "text", (c) => c.notNull())
      .addColumn("rows", "bigint", (c) => c.notNull())
      .addColumn("done", "integer", (c) => c.notNull())
      .addColumn("state_json", "text", (c) => c.notNull())
      .addColumn("updated_ts", "bigint", (c) => c.notNull())
      .execute();
  },
  "0120_admin": adminMigration,
  // The language and brand a session's or invite's messages are written in (issue 14); NULL for rows
  // from before: the default brand, in its default language.
  "0130_localisation": async (db) => {
    for (const table of ["validation_sessions", "invites"]) {
      await db.schema.alterTable(table).addColumn("lang", "text").execute();
      await db.schema.alterTable(table).addColumn("brand", "text").execute();
    }
  },
  // sydent's accounts.consent_version (the terms master_version it recorded when the user's accepted URLs
  // became enough), kept by `seraph import-sydent`; NULL for accounts made by Seraph. Seraph decides by URLs.
  "0140_sydent_consent_version": async (db) => {
    await db.schema.alterTable("accounts").addColumn("sydent_consent_version", "text").execute();
  },
  // The mxid beside each lookup hash (issue 12): a hashed lookup reads association_hashes alone, no join.
  "0150_hash_mxid": async (db) => {
    await db.schema
      .alterTable("association_hashes")
      .addColumn("mxid", "text", (c) => c.notNull().defaultTo(""))
      .execute();
    await sql`update association_hashes set mxid =
      (select a.mxid from associations a where a.id = association_hashes.association_id)`.execute(db);
    // Associations without a stored signature (bound before signatures were stored at bind, or whose
    // key was revoked): the background signer finds them without a scan.
    await db.schema
      .createIndex("associations_unsigned")
      .on("associations")
      .column("id")
      .where(sql.ref("signed_json"), "is", null)
      .execute();
  },
  // The change log of association_hashes (issue 12), written by triggers so that every writer is covered
  // (binds, unbinds, rotations, erasure, imports, cascades): a process that holds the hashes in memory
  // asks it on each lookup for what changed since the version it has (src/services/hash-index.ts).
  // `association_hash_version.v` is raised once per changing row (SQLite) or statement (PostgreSQL); the
  // row lock it takes orders the versions as the transactions commit. A change row with a NULL hash means
  // "too much changed at once: read everything again".
  "0160_hash_changes": async (db, dialect) => {
    await db.schema
      .createTable("association_hash_version")
      .addColumn("id", "bigint", (c) => c.primaryKey())
      .addColumn("v", "bigint", (c) => c.notNull())
      .execute();
    await sql`insert into association_hash_version (id, v) values (1, 0)`.execute(db);
    await db.schema
      .createTable("association_hash_changes")
      .addColumn("v", "bigint", (c) => c.notNull())
      .addColumn("pepper_id", "bigint")
      .addColumn("hash", "text")
      .execute();
    await db.schema
      .createIndex("association_hash_changes_v")
      .on("association_hash_changes")
      .column("v")
      .execute();
    for (const statement of dialect === "sqlite" ? SQLITE_HASH_TRIGGERS : POSTGRES_HASH_TRIGGERS) {
      await sql.raw(statement).execute(db);
    }
  },
};

/** True unless `pepper` (a column reference) is a pending pepper's id. */
const notPending = (pepper: string) =>
  `(select state from lookup_peppers where id = ${pepper}) is not 'pending'`;

/**
 * One version per changed row; a row whose key changes is logged under its old and new key. A pending
 * pepper's rows are not logged: no process holds that pepper in memory before it is current, and its
 * switch to current takes the version lock and logs "read this pepper again" (`LookupService.maintain`).
 */
const SQLITE_HASH_TRIGGERS = [
  `create trigger association_hashes_log_insert after insert on association_hashes
   when ${notPending("new.pepper_id")} begin
     update association_hash_version set v = v + 1;
     insert into association_hash_changes (v, pepper_id, hash)
       select v, new.pepper_id, new.hash from association_hash_version;
   end`,
  `create trigger association_hashes_log_update after update on association_hashes
   when ${notPending("new.pepper_id")} or ${notPending("old.pepper_id")} begin
     update association_hash_version set v = v + 1;
     insert into association_hash_changes (v, pepper_id, hash)
       select v, new.pepper_id, new.hash from association_hash_version
       union all select v, old.pepper_id, old.hash from association_hash_version
         where old.pepper_id <> new.pepper_id or old.hash <> new.hash;
   end`,
  `create trigger association_hashes_log_delete after delete on association_hashes
   when ${notPending("old.pepper_id")} begin
     update association_hash_version set v = v + 1;
     insert into association_hash_changes (v, pepper_id, hash)
       select v, old.pepper_id, old.hash from association_hash_version;
   end`,
];

/**
 * One version per statement that changed rows (but a pending pepper's, as on SQLite), from its transition
 * tables; a statement that changed more than 10 000 rows (an import, a copy) is logged as one "read this
 * pepper's hashes again" row per pepper.
 */
const POSTGRES_HASH_TRIGGERS = [
  `create function seraph_log_hash_changes() returns trigger language plpgsql as $$
   declare
     pending bigint[] := array(select id from lookup_peppers where state = 'pending');
     changed bigint;
     version bigint;
   begin
     if tg_op = 'DELETE' then
       select count(*) into changed from old_rows where pepper_id <> all(pending);
     else
       select count(*) into changed from new_rows where pepper_id <> all(pending);
     end if;
     if changed = 0 and tg_op = 'UPDATE' then
       select count(*) into changed from old_rows where pepper_id <> all(pending);
     end if;
     if changed = 0 then
       return null;
     end if;
     update association_hash_version set v = v + 1 returning v into version;
     if changed > 10000 and tg_op = 'DELETE' then
       insert into association_hash_changes (v, pepper_id, hash)
         select distinct version, pepper_id, null::text from old_rows where pepper_id <> all(pending);
     elsif changed > 10000 then
       insert into association_hash_changes (v, pepper_id, hash)
         select distinct version, pepper_id, null::text from new_rows where pepper_id <> all(pending);
     elsif tg_op = 'INSERT' then
       insert into association_hash_changes (v, pepper_id, hash)
         select version, pepper_id, hash from new_rows where pepper_id <> all(pending);
     elsif tg_op = 'DELETE' then
       insert into association_hash_changes (v, pepper_id, hash)
         select version, pepper_id, hash from old_rows where pepper_id <> all(pending);
     else
       insert into association_hash_changes (v, pepper_id, hash)
         select version, pepper_id, hash from new_rows where pepper_id <> all(pending)
         union select version, pepper_id, hash from old_rows where pepper_id <> all(pending);
     end if;
     return null;
   end
   $$`,
  `create trigger association_hashes_log_insert after insert on association_hashes
     referencing new table as new_rows for each statement execute function seraph_log_hash_changes()`,
  `create trigger association_hashes_log_update after update on association_hashes
     referencing old table as old_rows new table as new_rows
     for each statement execute function seraph_log_hash_changes()`,
  `create trigger association_hashes_log_delete after delete on association_hashes
     referencing old table as old_rows for each statement execute function seraph_log_hash_changes()`,
];

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
