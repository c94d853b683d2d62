import type { Kysely } from "kysely";
import type { PublishedKey } from "../crypto/keyring.js";
import type { Dialect } from "./dialect.js";
import { hotSelect } from "./hot-select.js";
import type { Database } from "./schema.js";

/** `GET /pubkey/ephemeral/isvalid`. */
const EPHEMERAL_KEY = hotSelect<{ created_ts: number }>({
  sqlite: "select created_ts from ephemeral_keys where public_key = ?",
  postgres: "select created_ts from ephemeral_keys where public_key = $1",
  postgresBatch:
    "select q.i::int as i, e.created_ts from unnest($1::text[]) with ordinality as q(k, i) join ephemeral_keys e on e.public_key = q.k",
});

/** Long-term and ephemeral public keys. */
export interface KeyRepository {
  /** Records a long-term key as published (idempotent). */
  recordSigningKey(key: PublishedKey, now: number): Promise<void>;
  /** Every long-term key that has not been revoked, newest first. */
  validSigningKeys(): Promise<PublishedKey[]>;
  /** Revokes long-term keys by public key or key id, never `keep`; returns the key ids revoked. */
  revokeSigningKey(publicKeyOrId: string, now: number, keep: string): Promise<string[]>;
  /** Every long-term key, revoked or not. */
  allSigningKeys(): Promise<Array<PublishedKey & { createdTs: number; revokedTs: number | null }>>;
  /** Whether an ephemeral key exists. */
  ephemeralKeyExists(publicKey: string): Promise<boolean>;
}

export class KyselyKeyRepository implements KeyRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async recordSigningKey(key: PublishedKey, now: number): Promise<void> {
    await this.db
      .insertInto("signing_keys")
      .values({ public_key: key.publicKeyBase64, key_id: key.keyId, created_ts: now, revoked_ts: null })
      .onConflict((oc) => oc.column("public_key").doNothing())
      .execute();
  }

  async validSigningKeys(): Promise<PublishedKey[]> {
    const rows = await this.db
      .selectFrom("signing_keys")
      .select(["key_id", "public_key"])
      .where("revoked_ts", "is", null)
      .orderBy("created_ts", "desc")
      .execute();
    return rows.map((r) => ({ keyId: r.key_id, publicKeyBase64: r.public_key }));
  }

  async revokeSigningKey(publicKeyOrId: string, now: number, keep: string): Promise<string[]> {
    const rows = await this.db
      .updateTable("signing_keys")
      .set({ revoked_ts: now })
      .where("revoked_ts", "is", null)
      .where("public_key", "!=", keep)
      .where((eb) => eb.or([eb("public_key", "=", publicKeyOrId), eb("key_id", "=", publicKeyOrId)]))
      .returning("key_id")
      .execute();
    return rows.map((r) => r.key_id);
  }

  async allSigningKeys() {
    const rows = await this.db.selectFrom("signing_keys").selectAll().orderBy("created_ts", "desc").execute();
    return rows.map((r) => ({
      keyId: r.key_id,
      publicKeyBase64: r.public_key,
      createdTs: r.created_ts,
      revokedTs: r.revoked_ts,
    }));
  }

  async ephemeralKeyExists(publicKey: string): Promise<boolean> {
    return (await EPHEMERAL_KEY(this.db, this.dialect, [publicKey])).length > 0;
  }
}
