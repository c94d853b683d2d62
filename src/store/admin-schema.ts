import type { Generated, Kysely } from "kysely";
import type { Database } from "./schema.js";

/** Operator tokens for the admin API, stored only as SHA-256 hashes. */
export interface AdminTokensTable {
  name: string;
  token_hash: string;
  created_ts: number;
  revoked_ts: number | null;
}

/** Append-only record of every admin action; targets only redacted and as a keyed hash. */
export interface AuditLogTable {
  id: Generated<number>;
  ts: number;
  actor: string;
  action: string;
  target_redacted: string | null;
  target_hmac: string | null;
  result: string;
  detail: string | null;
}

/** Addresses that must never be invited, by keyed hash (the address itself is not kept). */
export interface SuppressionsTable {
  address_hmac: string;
  medium: string;
  redacted: string;
  source: string;
  created_ts: number;
}

/** Refused inviters: `server` (homeserver name), `room` (room ID) or `keyword` (room/display names). */
export interface BlocklistTable {
  kind: string;
  value: string;
  reason: string | null;
  created_ts: number;
}

/** Secrets the admin features keep in the database (the audit HMAC key, the unsubscribe-link key). */
export interface AdminSecretsTable {
  name: string;
  value: string;
  created_ts: number;
}

export type AdminTables = {
  admin_tokens: AdminTokensTable;
  audit_log: AuditLogTable;
  suppressions: SuppressionsTable;
  blocklist: BlocklistTable;
  admin_secrets: AdminSecretsTable;
};

export type AdminDatabase = Database & AdminTables;

/** The query builder with the admin tables known to it (they are created by migration `0120_admin`). */
export function adminDb(db: Kysely<Database>): Kysely<AdminDatabase> {
  return db.withTables<AdminTables>();
}
