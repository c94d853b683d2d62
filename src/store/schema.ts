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
  /** Language and brand of the invite email (0130); NULL for older rows. */
  lang: string | null;
  brand: string | null;
}

/** Local 3PID associations (one mxid per medium+address). */
export interface AssociationsTable {
  id: Generated<number>;
  medium: string;
  address: string;
  mxid: string;
  ts: number;
  not_before: number;
  not_after: number;
  /** The signed association exactly as imported from sydent (served as is by v1 lookup); null when Seraph signs. */
  signed_json: Generated<string | null>;
}

/** Progress of `seraph import-sydent`: one row per phase, written in the same transaction as its batch. */
export interface SydentImportTable {
  phase: string;
  cursor: string;
  rows: number;
  done: number;
  state_json: string;
  updated_ts: number;
}

/** Users who registered with an OpenID token. */
export interface AccountsTable {
  user_id: string;
  created_ts: number;
  /** sydent's consent_version, for accounts imported from sydent (record only: terms are decided by URL). */
  sydent_consent_version: string | null;
}

/** v2 access tokens, stored only as SHA-256 hashes. */
export interface AccessTokensTable {
  token_hash: string;
  user_id: string;
  created_ts: number;
  expires_ts: number | null;
}

/** Policy document URLs a user has accepted. */
export interface AcceptedTermsTable {
  user_id: string;
  url: string;
  accepted_ts: number;
}

/** Email and phone validation sessions. */
export interface ValidationSessionsTable {
  sid: string;
  medium: string;
  address: string;
  client_secret: string;
  token: string;
  send_attempt: number;
  next_link: string | null;
  failed_attempts: Generated<number>;
  validated_ts: number | null;
  created_ts: number;
  mtime: number;
  /** Language and brand of the session's messages and pages (0130); NULL for older rows. */
  lang: string | null;
  brand: string | null;
}

/** Lookup peppers: one `current`, at most one `pending` (being hashed) and `previous` ones in their grace period. */
export interface LookupPeppersTable {
  id: Generated<number>;
  pepper: string;
  state: "pending" | "current" | "previous";
  created_ts: number;
  activated_ts: number | null;
  retired_ts: number | null;
  /** Highest association id hashed under this (pending) pepper so far. */
  rehash_cursor: Generated<number>;
}

/** sha256 lookup hash of every association under every live pepper. */
export interface AssociationHashesTable {
  pepper_id: number;
  hash: string;
  association_id: number;
  /** A copy of the association's mxid, so that a lookup reads one table (kept equal by every writer). */
  mxid: string;
}

/** The version of `association_hashes` (one row): raised by its triggers on every change (migration 0160). */
export interface AssociationHashVersionTable {
  id: number;
  v: number;
}

/** What changed in `association_hashes` at each version (written by its triggers; pruned by maintenance). */
export interface AssociationHashChangesTable {
  v: number;
  /** NULL with `hash`: everything may have changed (a bulk statement). */
  pepper_id: number | null;
  hash: string | null;
}

/** Durable onbind deliveries (invites to hand to the mxid's homeserver). */
export interface OnbindJobsTable {
  id: Generated<number>;
  medium: string;
  address: string;
  mxid: string;
  attempts: Generated<number>;
  next_attempt_ts: number;
  locked_until: number | null;
  last_error: string | null;
  created_ts: number;
}

export interface Database {
  validation_sessions: ValidationSessionsTable;
  lookup_peppers: LookupPeppersTable;
  association_hashes: AssociationHashesTable;
  association_hash_version: AssociationHashVersionTable;
  association_hash_changes: AssociationHashChangesTable;
  onbind_jobs: OnbindJobsTable;
  accounts: AccountsTable;
  access_tokens: AccessTokensTable;
  accepted_terms: AcceptedTermsTable;
  signing_keys: SigningKeysTable;
  ephemeral_keys: EphemeralKeysTable;
  invites: InvitesTable;
  associations: AssociationsTable;
  sydent_import: SydentImportTable;
}
