import type { Generated } from "kysely";

/** Long-term public keys ever published; a revoked key no longer validates. */
export interface SigningKeysTable {
  public_key: string;
  key_id: string;
  created_ts: number;
  revoked_ts: number | null;
}

/** Ephemeral public keys handed out with invites. */
export interface EphemeralKeysTable {
  public_key: string;
  created_ts: number;
  verify_count: Generated<number>;
}

/** Stored third-party invites, with every request parameter kept as JSON. */
export interface InvitesTable {
  id: Generated<number>;
  token: string;
  medium: string;
  address: string;
  room_id: string;
  sender: string;
  ephemeral_public_key: string;
  params_json: string;
  received_ts: number;
  sent_ts: number | null;
}

/** Local 3PID associations (one mxid per medium+address). */
export interface AssociationsTable {
  id: Generated<number>;
  medium: string;
  address: string;
  lookup_hash: string;
  mxid: string;
  ts: number;
  not_before: number;
  not_after: number;
}

export interface Database {
  signing_keys: SigningKeysTable;
  ephemeral_keys: EphemeralKeysTable;
  invites: InvitesTable;
  associations: AssociationsTable;
}
