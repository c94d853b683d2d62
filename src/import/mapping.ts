import { nulField } from "../core/nul.js";
import { normalisePublicKey } from "../crypto/keyring.js";
import { normaliseAddress } from "../threepid/normalise.js";
import type { SydentGlobalRow, SydentInviteRow, SydentSessionRow } from "./sydent-db.js";

/** A binding as Seraph stores it, with the signed association kept from sydent when it is clean. */
export interface ImportedBinding {
  medium: string;
  address: string;
  mxid: string;
  ts: number;
  notBefore: number;
  notAfter: number;
  /** sydent's sgAssoc, byte for byte, or null when Seraph must sign again. */
  signedJson: string | null;
}

/** What happened to the rows of one address (the counters of the report). */
export type BindingCounter =
  | "rows_read"
  | "superseded"
  | "not_live"
  | "tombstoned"
  | "peer_skipped"
  | "peer_imported"
  | "signed_kept"
  | "fixed_leaked_invites"
  | "resigned_mismatch"
  | "fixed_casefold_address"
  | "non_ascii_addresses";

export type Counters = Record<string, number>;

export function bump(c: Counters, key: string, by = 1): void {
  c[key] = (c[key] ?? 0) + by;
}

const SIGNED_KEYS = new Set(["address", "medium", "mxid", "not_after", "not_before", "signatures", "ts"]);

/**
 * Whether sydent's stored signed association says exactly what the row says (and nothing else), so that it
 * can be served as is. Returns "invites" for sydent's leaked-invites bug (a shared mutable default put the
 * pending invites of an earlier bind into later associations).
 */
export function classifySgAssoc(row: SydentGlobalRow, address: string): "clean" | "invites" | "mismatch" {
  let parsed: Record<string, unknown>;
  try {
    const v = JSON.parse(row.sgAssoc) as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) return "mismatch";
    parsed = v as Record<string, unknown>;
  } catch {
    return "mismatch";
  }
  if ("invites" in parsed) return "invites";
  // Exactly the signed keys (JSON.parse gives own keys only, each once); no sorted copy per row.
  let n = 0;
  for (const k in parsed) {
    if (!SIGNED_KEYS.has(k)) return "mismatch";
    n++;
  }
  if (n !== SIGNED_KEYS.size) return "mismatch";
  const sigs = parsed.signatures;
  if (
    parsed.medium !== row.medium ||
    parsed.address !== address ||
    parsed.mxid !== row.mxid ||
    parsed.ts !== row.ts ||
    parsed.not_before !== row.notBefore ||
    parsed.not_after !== row.notAfter ||
    typeof sigs !== "object" ||
    sigs === null ||
    !(row.originServer in sigs)
  ) {
    return "mismatch";
  }
  return "clean";
}

function hasNonAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return true;
  return false;
}

export interface BindingRules {
  ownServer: string;
  importPeers: boolean;
  now: number;
}

/**
 * Picks the binding sydent answers lookups with from all global rows of one (medium, address), newest
 * first: the newest live row (`notBefore < now < notAfter`) of an accepted origin, unless a local
 * tombstone (an unbind) is as new as it. Counts what was left out and what was fixed.
 */
export function pickBinding(
  group: readonly SydentGlobalRow[],
  rules: BindingRules,
  c: Counters,
): ImportedBinding | undefined {
  bump(c, "rows_read", group.length);
  let chosen: SydentGlobalRow | undefined;
  for (const row of group) {
    if (chosen) {
      bump(c, "superseded");
      continue;
    }
    const peer = row.originServer !== rules.ownServer;
    if (peer && !rules.importPeers) {
      bump(c, "peer_skipped");
      continue;
    }
    if (!(row.notBefore < rules.now && rules.now < row.notAfter)) {
      bump(c, "not_live");
      continue;
    }
    if (row.tombstoneTs !== null && row.tombstoneTs >= row.ts) {
      bump(c, "tombstoned");
      continue;
    }
    chosen = row;
  }
  if (!chosen) return undefined;
  // Seraph refuses NUL in requests and PostgreSQL cannot store it: skipped, not a failed import.
  if (nulField(chosen) !== undefined) {
    bump(c, "nul_skipped");
    return undefined;
  }
  if (chosen.originServer !== rules.ownServer) bump(c, "peer_imported");
  const address = normaliseAddress(chosen.medium, chosen.address);
  if (address !== chosen.address) bump(c, "fixed_casefold_address");
  if (chosen.medium === "email" && hasNonAscii(address)) bump(c, "non_ascii_addresses");
  const kind = address === chosen.address ? classifySgAssoc(chosen, address) : "mismatch";
  if (kind === "clean") bump(c, "signed_kept");
  else if (kind === "invites") bump(c, "fixed_leaked_invites");
  else bump(c, "resigned_mismatch");
  return {
    medium: chosen.medium,
    address,
    mxid: chosen.mxid,
    ts: chosen.ts,
    notBefore: chosen.notBefore,
    notAfter: chosen.notAfter,
    signedJson: kind === "clean" ? chosen.sgAssoc : null,
  };
}

/** A pending invite as Seraph stores it. */
export interface ImportedInvite {
  token: string;
  medium: string;
  address: string;
  roomId: string;
  sender: string;
  ephemeralPublicKey: string;
  paramsJson: string;
  receivedTs: number;
  /** sydent set sent_ts but the homeserver never took the invite: deliver it again once bound. */
  abandoned: boolean;
}

export function mapInvite(row: SydentInviteRow, now: number, c: Counters): ImportedInvite {
  const abandoned = row.sent_ts !== null;
  if (abandoned) bump(c, "abandoned_by_sydent");
  else bump(c, "pending");
  const key = row.public_key === null ? null : normalisePublicKey(row.public_key);
  if (key === null) bump(c, "without_known_ephemeral_key");
  // sydent keeps invite timestamps in seconds.
  const receivedTs = row.received_ts === null ? now : row.received_ts * 1000;
  const params = abandoned
    ? { sydent_sent_ts: (row.sent_ts ?? 0) * 1000, sydent_delivery_abandoned: true }
    : {};
  return {
    token: row.token,
    medium: row.medium,
    address: normaliseAddress(row.medium, row.address),
    roomId: row.room_id,
    sender: row.sender,
    ephemeralPublicKey: key ?? "",
    paramsJson: JSON.stringify(params),
    receivedTs,
    abandoned,
  };
}

/** A validation session as Seraph stores it. */
export interface ImportedSession {
  sid: string;
  medium: string;
  address: string;
  clientSecret: string;
  token: string;
  sendAttempt: number;
  validatedTs: number | null;
  createdTs: number;
  mtime: number;
}

export function mapSession(row: SydentSessionRow, c: Counters): ImportedSession | undefined {
  if (row.token === null) {
    bump(c, "without_token_skipped");
    return undefined;
  }
  bump(c, row.validated ? "validated" : "unvalidated");
  return {
    sid: String(row.id),
    medium: row.medium,
    address: normaliseAddress(row.medium, row.address),
    clientSecret: row.clientSecret,
    token: row.token,
    // sydent never updates sendAttemptNumber (it stays -1): any send_attempt sends again, as in sydent.
    sendAttempt: row.sendAttemptNumber ?? -1,
    validatedTs: row.validated ? row.mtime : null,
    createdTs: row.mtime,
    mtime: row.mtime,
  };
}
