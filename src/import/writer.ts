import { type Kysely, sql, type Transaction } from "kysely";
import { sha256Hex } from "../crypto/hash.js";
import { holdAccounts } from "../store/accounts.js";
import { lockHashVersion } from "../store/association-hashes.js";
import type { Dialect } from "../store/dialect.js";
import type { Database } from "../store/schema.js";
import { sqliteConnection } from "../store/sqlite-connection.js";
import { lookupHash } from "../threepid/normalise.js";
import type { ImportedBinding, ImportedInvite, ImportedSession } from "./mapping.js";
import { SqliteBindingWriter } from "./sqlite-bindings.js";

/** Rows per INSERT statement: far below the bound-parameter limits of SQLite and PostgreSQL. */
const CHUNK = 500;

export type Tx = Transaction<Database>;

/** The progress row of one phase. */
export interface PhaseState {
  phase: string;
  cursor: string;
  rows: number;
  done: boolean;
  counters: Record<string, number>;
}

/** Tables that make a Seraph database "not empty" for an import. */
const DATA_TABLES = [
  "associations",
  "invites",
  "ephemeral_keys",
  "accounts",
  "access_tokens",
  "accepted_terms",
  "validation_sessions",
  "onbind_jobs",
] as const;

function chunks<T>(rows: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += CHUNK) out.push(rows.slice(i, i + CHUNK));
  return out;
}

/** Every write of the importer, each batch in the transaction it is given. */
export class ImportWriter {
  private fast: SqliteBindingWriter | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  /**
   * The fast path for the bindings of a fresh import (not `merge`) into SQLite, or undefined (PostgreSQL,
   * `--merge`: `writeBindings`).
   */
  fastBindings(merge: boolean): SqliteBindingWriter | undefined {
    if (merge) return undefined;
    const raw = sqliteConnection(this.db);
    if (!raw) return undefined;
    this.fast ??= new SqliteBindingWriter(raw);
    return this.fast;
  }

  /**
   * Drops the binding tables' secondary indexes for the fast path, once per import: the SQL that creates them
   * again is kept in the `_indexes` row, in the same transaction, so that a resumed import builds them too.
   * Returns that SQL.
   */
  async dropIndexesOnce(fast: SqliteBindingWriter, now: number): Promise<string[]> {
    return this.transaction(async (tx) => {
      const row = await tx
        .selectFrom("sydent_import")
        .select("cursor")
        .where("phase", "=", "_indexes")
        .executeTakeFirst();
      if (row) return JSON.parse(row.cursor) as string[];
      const indexes = fast.dropSecondaryIndexes();
      await this.saveState(
        {
          phase: "_indexes",
          cursor: JSON.stringify(indexes),
          rows: indexes.length,
          done: false,
          counters: {},
        },
        now,
        tx,
      );
      return indexes;
    });
  }

  /**
   * SQLite, for the import's own connection (it closes with the import): a small page cache (nothing is
   * written in random order any more: 8 MiB measured as fast as 128 MiB at 1M bindings, with 200 MiB less
   * RSS), no mmap, a rollback journal and no fsync. Memory stays bounded whatever the number of rows.
   */
  async tuneSqlite(): Promise<void> {
    await sql`pragma cache_size = -8192`.execute(this.db);
    // Pages read through mmap would count as this process's memory up to the whole file.
    await sql`pragma mmap_size = 0`.execute(this.db);
    // No fsync: a killed import (any signal, any moment) still leaves a consistent database, since the OS
    // has every write; only an OS crash or power loss during the import could lose or corrupt it, and then
    // the import is started again on an empty database (docs/migrating-from-sydent.md).
    await sql`pragma synchronous = OFF`.execute(this.db);
    // A rollback journal instead of the WAL: a fresh import mostly appends pages, which a rollback journal
    // writes once (no WAL copy, no checkpoint: a quarter less CPU per inserted row, measured). A kill leaves
    // a hot journal that the next open rolls back. `untuneSqlite` goes back to WAL, as does every
    // `openStore`. If another connection holds the database, SQLite keeps the WAL, and so does the import.
    const mode = await sql<{ journal_mode: string }>`pragma journal_mode = DELETE`
      .execute(this.db)
      .then((r) => r.rows[0]?.journal_mode)
      .catch(() => undefined);
    if (mode !== "delete") await sql`pragma wal_autocheckpoint = 20000`.execute(this.db);
  }

  /** Back to Seraph's journal mode (WAL) at the end of an import, finished or not. */
  async untuneSqlite(): Promise<void> {
    await sql`pragma journal_mode = WAL`.execute(this.db);
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  /** The tables that already hold rows. */
  async nonEmptyTables(): Promise<string[]> {
    const out: string[] = [];
    for (const t of DATA_TABLES) {
      const row = await this.db.selectFrom(t).select(sql<number>`1`.as("one")).limit(1).executeTakeFirst();
      if (row) out.push(t);
    }
    return out;
  }

  async phases(): Promise<Map<string, PhaseState>> {
    const rows = await this.db.selectFrom("sydent_import").selectAll().execute();
    return new Map(
      rows.map((r) => [
        r.phase,
        {
          phase: r.phase,
          cursor: r.cursor,
          rows: Number(r.rows),
          done: Number(r.done) === 1,
          counters: JSON.parse(r.state_json) as Record<string, number>,
        },
      ]),
    );
  }

  async clearPhases(tx: Tx): Promise<void> {
    await tx.deleteFrom("sydent_import").execute();
  }

  /** Records a phase's progress, in `tx` when given (the batch's transaction). */
  async saveState(s: PhaseState, now: number, tx: Tx | Kysely<Database> = this.db): Promise<void> {
    const values = {
      cursor: s.cursor,
      rows: s.rows,
      done: s.done ? 1 : 0,
      state_json: JSON.stringify(s.counters),
      updated_ts: now,
    };
    await tx
      .insertInto("sydent_import")
      .values({ phase: s.phase, ...values })
      .onConflict((oc) => oc.column("phase").doUpdateSet(values))
      .execute();
  }

  /**
   * Makes sydent's pepper the current one. On an empty database any pepper a first start created is
   * replaced; when merging, a different current pepper becomes a previous one (still accepted for its grace
   * period). Returns the pepper id and whether existing associations must be hashed with it.
   */
  async installPepper(
    tx: Tx,
    pepper: string,
    merge: boolean,
    now: number,
  ): Promise<{ id: number; rehash: boolean }> {
    // Before reading the peppers: a running server's switch to a pending pepper holds this lock from its
    // read of the pending row to its commit, so the two take turns (else a switch that read the pending row
    // before this commit would retire the pepper installed here, and leave no current one).
    await lockHashVersion(tx);
    const current = await tx
      .selectFrom("lookup_peppers")
      .select(["id", "pepper"])
      .where("state", "=", "current")
      .executeTakeFirst();
    if (current?.pepper === pepper) return { id: current.id, rehash: false };
    let rehash = false;
    if (merge) {
      await tx
        .updateTable("lookup_peppers")
        .set({ state: "previous", retired_ts: now })
        .where("state", "=", "current")
        .execute();
      await tx.deleteFrom("lookup_peppers").where("state", "=", "pending").execute();
      rehash = current !== undefined;
    } else {
      await tx.deleteFrom("association_hashes").execute();
      await tx.deleteFrom("lookup_peppers").execute();
    }
    // A pepper that was once current here and then retired: bring it back rather than duplicate it.
    await tx.deleteFrom("lookup_peppers").where("pepper", "=", pepper).execute();
    const row = await tx
      .insertInto("lookup_peppers")
      .values({ pepper, state: "current", created_ts: now, activated_ts: now, retired_ts: null })
      .returning("id")
      .executeTakeFirstOrThrow();
    return { id: row.id, rehash };
  }

  /** Starts a normal rotation (`--rotate-pepper`): a pending pepper that running servers hash and switch to. */
  async startRotation(pepper: string, now: number): Promise<void> {
    await this.db
      .insertInto("lookup_peppers")
      .values({ pepper, state: "pending", created_ts: now, activated_ts: null, retired_ts: null })
      .onConflict((oc) => oc.doNothing())
      .execute();
  }

  /**
   * Stores bindings with their hash under `pepper`. Without `merge`, an address already stored (two sydent
   * spellings that fold to one) keeps the newer binding; with `merge`, what is there stays. Returns how many
   * rows were not written because of what was already there.
   */
  async writeBindings(
    tx: Tx,
    batch: readonly ImportedBinding[],
    pepper: { id: number; pepper: string },
    merge: boolean,
  ): Promise<number> {
    let skipped = 0;
    await lockHashVersion(tx);
    for (const part of chunks(batch)) {
      const values = part.map((b) => ({
        medium: b.medium,
        address: b.address,
        mxid: b.mxid,
        ts: b.ts,
        not_before: b.notBefore,
        not_after: b.notAfter,
        signed_json: b.signedJson,
      }));
      const written = await tx
        .insertInto("associations")
        .values(values)
        .onConflict((oc) =>
          merge
            ? oc.columns(["medium", "address"]).doNothing()
            : oc
                .columns(["medium", "address"])
                .doUpdateSet((eb) => ({
                  mxid: eb.ref("excluded.mxid"),
                  ts: eb.ref("excluded.ts"),
                  not_before: eb.ref("excluded.not_before"),
                  not_after: eb.ref("excluded.not_after"),
                  signed_json: eb.ref("excluded.signed_json"),
                }))
                .where(({ eb, ref }) => eb(ref("excluded.ts"), ">", ref("associations.ts"))),
        )
        .returning(["id", "medium", "address", "mxid"])
        .execute();
      skipped += part.length - written.length;
      if (written.length) {
        await tx
          .insertInto("association_hashes")
          .values(
            written.map((r) => ({
              pepper_id: pepper.id,
              hash: lookupHash(r.address, r.medium, pepper.pepper),
              association_id: r.id,
              mxid: r.mxid,
            })),
          )
          .onConflict((oc) =>
            oc.columns(["pepper_id", "hash"]).doUpdateSet((eb) => ({ mxid: eb.ref("excluded.mxid") })),
          )
          .execute();
      }
    }
    return skipped;
  }

  /** Hashes the next associations (id order, after `afterId`) under a pepper; returns the last id or undefined. */
  async rehashAfter(
    pepper: { id: number; pepper: string },
    afterId: number,
    limit: number,
  ): Promise<number | undefined> {
    const rows = await this.db
      .selectFrom("associations")
      .select(["id", "medium", "address", "mxid"])
      .where("id", ">", afterId)
      .orderBy("id")
      .limit(limit)
      .execute();
    if (rows.length === 0) return undefined;
    await this.transaction(async (tx) => {
      await lockHashVersion(tx);
      for (const part of chunks(rows)) {
        await tx
          .insertInto("association_hashes")
          .values(
            part.map((r) => ({
              pepper_id: pepper.id,
              hash: lookupHash(r.address, r.medium, pepper.pepper),
              association_id: r.id,
              mxid: r.mxid,
            })),
          )
          .onConflict((oc) => oc.columns(["pepper_id", "hash"]).doNothing())
          .execute();
      }
    });
    return rows[rows.length - 1]!.id;
  }

  async writeEphemeralKeys(
    tx: Tx,
    keys: ReadonlyArray<{ publicKey: string; createdTs: number }>,
  ): Promise<number> {
    let skipped = 0;
    for (const part of chunks(keys)) {
      const res = await tx
        .insertInto("ephemeral_keys")
        .values(part.map((k) => ({ public_key: k.publicKey, created_ts: k.createdTs })))
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      skipped += part.length - Number(res.numInsertedOrUpdatedRows ?? 0);
    }
    return skipped;
  }

  /**
   * Stores invites; an invite sydent gave up on whose address is bound gets an onbind delivery job, so that
   * it reaches the homeserver after all. Returns [skipped, queued].
   */
  async writeInvites(tx: Tx, invites: readonly ImportedInvite[], now: number): Promise<[number, number]> {
    let skipped = 0;
    let queued = 0;
    for (const part of chunks(invites)) {
      const res = await tx
        .insertInto("invites")
        .values(
          part.map((i) => ({
            token: i.token,
            medium: i.medium,
            address: i.address,
            room_id: i.roomId,
            sender: i.sender,
            ephemeral_public_key: i.ephemeralPublicKey,
            params_json: i.paramsJson,
            received_ts: i.receivedTs,
          })),
        )
        .onConflict((oc) => oc.doNothing())
        .returning(["medium", "address"])
        .execute();
      skipped += part.length - res.length;
    }
    for (const i of invites) {
      if (!i.abandoned) continue;
      const bound = await tx
        .selectFrom("associations")
        .select("mxid")
        .where("medium", "=", i.medium)
        .where("address", "=", i.address)
        .executeTakeFirst();
      if (!bound) continue;
      const job = await tx
        .selectFrom("onbind_jobs")
        .select("id")
        .where("medium", "=", i.medium)
        .where("address", "=", i.address)
        .executeTakeFirst();
      if (job) continue;
      await tx
        .insertInto("onbind_jobs")
        .values({
          medium: i.medium,
          address: i.address,
          mxid: bound.mxid,
          next_attempt_ts: now,
          created_ts: now,
        })
        .execute();
      queued++;
    }
    return [skipped, queued];
  }

  async writeAccounts(
    tx: Tx,
    accounts: ReadonlyArray<{ userId: string; createdTs: number; consentVersion: string | null }>,
  ): Promise<number> {
    let skipped = 0;
    for (const part of chunks(accounts)) {
      const res = await tx
        .insertInto("accounts")
        .values(
          part.map((a) => ({
            user_id: a.userId,
            created_ts: a.createdTs,
            sydent_consent_version: a.consentVersion,
          })),
        )
        .onConflict((oc) => oc.column("user_id").doNothing())
        .executeTakeFirst();
      skipped += part.length - Number(res.numInsertedOrUpdatedRows ?? 0);
    }
    return skipped;
  }

  /** Stores the hashes of sydent's plain-text tokens (never the tokens). Returns how many were there. */
  async writeTokens(
    tx: Tx,
    tokens: ReadonlyArray<{ token: string; userId: string; createdTs: number }>,
  ): Promise<number> {
    let skipped = 0;
    for (const part of chunks(tokens)) {
      // A token whose account row is missing in sydent still names a user: give it an account. Held, as a
      // login holds it, so that a running server's purge cannot delete it under a merged token.
      await holdAccounts(
        tx,
        this.dialect,
        part.map((t) => ({ user_id: t.userId, created_ts: t.createdTs })),
      );
      const res = await tx
        .insertInto("access_tokens")
        .values(
          part.map((t) => ({
            token_hash: sha256Hex(t.token),
            user_id: t.userId,
            created_ts: t.createdTs,
            expires_ts: null,
          })),
        )
        .onConflict((oc) => oc.column("token_hash").doNothing())
        .executeTakeFirst();
      skipped += part.length - Number(res.numInsertedOrUpdatedRows ?? 0);
    }
    return skipped;
  }

  async writeAcceptedTerms(
    tx: Tx,
    rows: ReadonlyArray<{ userId: string; url: string; acceptedTs: number }>,
  ): Promise<number> {
    let skipped = 0;
    for (const part of chunks(rows)) {
      const res = await tx
        .insertInto("accepted_terms")
        .values(part.map((r) => ({ user_id: r.userId, url: r.url, accepted_ts: r.acceptedTs })))
        .onConflict((oc) => oc.columns(["user_id", "url"]).doNothing())
        .executeTakeFirst();
      skipped += part.length - Number(res.numInsertedOrUpdatedRows ?? 0);
    }
    return skipped;
  }

  async writeSessions(tx: Tx, sessions: readonly ImportedSession[]): Promise<number> {
    let skipped = 0;
    for (const part of chunks(sessions)) {
      const res = await tx
        .insertInto("validation_sessions")
        .values(
          part.map((s) => ({
            sid: s.sid,
            medium: s.medium,
            address: s.address,
            client_secret: s.clientSecret,
            token: s.token,
            send_attempt: s.sendAttempt,
            next_link: null,
            failed_attempts: 0,
            validated_ts: s.validatedTs,
            created_ts: s.createdTs,
            mtime: s.mtime,
          })),
        )
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      skipped += part.length - Number(res.numInsertedOrUpdatedRows ?? 0);
    }
    return skipped;
  }
}
