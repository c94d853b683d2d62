import type { Kysely } from "kysely";
import type { JsonValue } from "../core/errors.js";
import type { Database } from "./schema.js";

/** A stored third-party invite. */
export interface InviteRecord {
  token: string;
  medium: string;
  address: string;
  roomId: string;
  sender: string;
  ephemeralPublicKey: string;
  /** Every parameter of the store-invite request, as received. */
  params: Record<string, JsonValue>;
  receivedTs: number;
  /** Language and brand of the invite email; null: the default brand in its default language. */
  lang?: string | null;
  brand?: string | null;
}

export interface InviteRepository {
  /** Stores the invite and its ephemeral public key, in one transaction. */
  insert(invite: InviteRecord): Promise<void>;
  /** Removes an invite and its ephemeral key (used when its email could not be sent). */
  delete(token: string): Promise<void>;
  findByToken(token: string): Promise<InviteRecord | undefined>;
  /** Deletes delivered invites (their ephemeral keys stay valid until they expire). */
  deleteTokens(tokens: readonly string[]): Promise<void>;
  /** Whether any invite waits for this 3PID. */
  existsFor(medium: string, address: string): Promise<boolean>;
  /** Pending invites for a 3PID, oldest first. */
  findByThreepid(medium: string, address: string): Promise<InviteRecord[]>;
  /** Deletes up to `limit` invites received before `olderThan` and ephemeral keys created before it. */
  purgeOlderThan(olderThan: number, limit: number): Promise<number>;
}

type InviteRow = Database["invites"];

function toRecord(r: Omit<InviteRow, "id">): InviteRecord {
  return {
    token: r.token,
    medium: r.medium,
    address: r.address,
    roomId: r.room_id,
    sender: r.sender,
    ephemeralPublicKey: r.ephemeral_public_key,
    params: JSON.parse(r.params_json) as Record<string, JsonValue>,
    receivedTs: r.received_ts,
    lang: r.lang,
    brand: r.brand,
  };
}

const COLUMNS = [
  "token",
  "medium",
  "address",
  "room_id",
  "sender",
  "ephemeral_public_key",
  "params_json",
  "received_ts",
  "lang",
  "brand",
] as const;

export class KyselyInviteRepository implements InviteRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(i: InviteRecord): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto("ephemeral_keys")
        .values({ public_key: i.ephemeralPublicKey, created_ts: i.receivedTs })
        .execute();
      await tx
        .insertInto("invites")
        .values({
          token: i.token,
          medium: i.medium,
          address: i.address,
          room_id: i.roomId,
          sender: i.sender,
          ephemeral_public_key: i.ephemeralPublicKey,
          params_json: JSON.stringify(i.params),
          received_ts: i.receivedTs,
          lang: i.lang ?? null,
          brand: i.brand ?? null,
        })
        .execute();
    });
  }

  async delete(token: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const row = await tx
        .selectFrom("invites")
        .select("ephemeral_public_key")
        .where("token", "=", token)
        .executeTakeFirst();
      await tx.deleteFrom("invites").where("token", "=", token).execute();
      if (row)
        await tx.deleteFrom("ephemeral_keys").where("public_key", "=", row.ephemeral_public_key).execute();
    });
  }

  async deleteTokens(tokens: readonly string[]): Promise<void> {
    if (tokens.length) await this.db.deleteFrom("invites").where("token", "in", tokens).execute();
  }

  async existsFor(medium: string, address: string): Promise<boolean> {
    const row = await this.db
      .selectFrom("invites")
      .select("id")
      .where("medium", "=", medium)
      .where("address", "=", address)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  async findByToken(token: string): Promise<InviteRecord | undefined> {
    const row = await this.db
      .selectFrom("invites")
      .select(COLUMNS)
      .where("token", "=", token)
      .executeTakeFirst();
    return row && toRecord(row);
  }

  async purgeOlderThan(olderThan: number, limit: number): Promise<number> {
    const invites = await this.db
      .deleteFrom("invites")
      .where(
        "id",
        "in",
        this.db.selectFrom("invites").select("id").where("received_ts", "<", olderThan).limit(limit),
      )
      .executeTakeFirst();
    const keys = await this.db
      .deleteFrom("ephemeral_keys")
      .where(
        "public_key",
        "in",
        this.db
          .selectFrom("ephemeral_keys")
          .select("public_key")
          .where("created_ts", "<", olderThan)
          .limit(limit),
      )
      .executeTakeFirst();
    return Number(invites.numDeletedRows) + Number(keys.numDeletedRows);
  }

  async findByThreepid(medium: string, address: string): Promise<InviteRecord[]> {
    const rows = await this.db
      .selectFrom("invites")
      .select(COLUMNS)
      .where("medium", "=", medium)
      .where("address", "=", address)
      .orderBy("id")
      .execute();
    return rows.map(toRecord);
  }
}
