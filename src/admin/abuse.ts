import { createHmac } from "node:crypto";
import { type JsonValue, MatrixError } from "../core/errors.js";
import { constantTimeEqual } from "../crypto/hash.js";
import { serverPartOfUserId } from "../federation/index.js";
import type { BlockEntry, BlockKind, KyselyBlocklistRepository } from "../store/blocklist.js";
import type { KyselySuppressionRepository, Suppression } from "../store/suppressions.js";
import { type Auditor, redactIdentifier } from "./audit.js";

/** Why a store-invite was refused (a metrics label). */
export type RefusalReason = "server" | "room" | "keyword" | "suppressed";

/** What store-invite asks the policy about. */
export interface InviteCandidate {
  medium: string;
  /** Normalised address. */
  address: string;
  sender: string;
  roomId: string;
  params: Record<string, JsonValue>;
}

/** A signed unsubscribe link's parameters. */
export interface UnsubscribeToken {
  h: string;
  m: string;
  r: string;
  e: string;
  s: string;
}

export interface PolicySettings {
  publicBaseUrl: string;
  unsubscribeLinkLifetimeMs: number;
  /** Path of the unsubscribe page on the public listener. */
  unsubscribePath: string;
}

const forbidden = (message: string) => new MatrixError("M_FORBIDDEN", message);

/** Whether `server` is `entry` or (for `*.example.org`) one of its subdomains. */
function serverMatches(server: string, entry: string): boolean {
  const s = server.toLowerCase().replace(/:\d+$/, "");
  const e = entry.toLowerCase();
  if (e.startsWith("*.")) return s.endsWith(e.slice(1)) || s === e.slice(2);
  return s === e || server.toLowerCase() === e;
}

/**
 * Abuse controls for store-invite: blocklisted homeservers, rooms and keywords, and the suppression list
 * ("never invite me"), which keeps addresses only as a keyed hash. Also signs the unsubscribe links put in
 * every invite email.
 */
export class InvitePolicy {
  constructor(
    private readonly settings: PolicySettings,
    private readonly blocklist: KyselyBlocklistRepository,
    private readonly suppressions: KyselySuppressionRepository,
    private readonly audit: Auditor,
    private readonly linkKey: string,
    private readonly onRefused: (reason: RefusalReason) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws 403 M_FORBIDDEN when the invite must not be stored or mailed. */
  async check(c: InviteCandidate): Promise<void> {
    const reason = await this.refusal(c);
    if (reason === undefined) return;
    this.onRefused(reason);
    throw forbidden(
      reason === "suppressed"
        ? "This address does not accept invitations"
        : "Invitations from this sender or room are not accepted",
    );
  }

  private async refusal(c: InviteCandidate): Promise<RefusalReason | undefined> {
    const entries = await this.blocklist.list();
    const senderServer = serverPartOfUserId(c.sender) ?? "";
    const roomColon = c.roomId.indexOf(":");
    const roomServer = roomColon >= 0 ? c.roomId.slice(roomColon + 1) : "";
    const names = ["room_name", "sender_display_name", "room_alias"]
      .map((k) => c.params[k])
      .filter((v): v is string => typeof v === "string")
      .map((v) => v.toLowerCase());
    for (const e of entries) {
      if (e.kind === "server" && (serverMatches(senderServer, e.value) || serverMatches(roomServer, e.value)))
        return "server";
      if (e.kind === "room" && e.value === c.roomId) return "room";
      if (e.kind === "keyword" && names.some((n) => n.includes(e.value.toLowerCase()))) return "keyword";
    }
    if (await this.suppressions.has(this.audit.hmac(c.address))) return "suppressed";
    return undefined;
  }

  // --- the lists, for operators -------------------------------------------------------------------

  async block(kind: BlockKind, value: string, reason: string | null, actor: string): Promise<boolean> {
    const v = kind === "keyword" || kind === "server" ? value.toLowerCase() : value;
    const added = await this.blocklist.add({ kind, value: v, reason, createdTs: this.now() });
    await this.audit.record(actor, "blocklist.add", undefined, added ? "ok" : "exists", { kind, value: v });
    return added;
  }

  async unblock(kind: BlockKind, value: string, actor: string): Promise<boolean> {
    const v = kind === "keyword" || kind === "server" ? value.toLowerCase() : value;
    const removed = await this.blocklist.remove(kind, v);
    await this.audit.record(actor, "blocklist.remove", undefined, removed ? "ok" : "not_found", {
      kind,
      value: v,
    });
    return removed;
  }

  blocked(kind?: BlockKind): Promise<BlockEntry[]> {
    return this.blocklist.list(kind);
  }

  /** Puts a (normalised) address on the suppression list. */
  async suppress(medium: string, address: string, source: string, actor: string): Promise<boolean> {
    const target = this.audit.target(address)!;
    const added = await this.suppressions.add({
      addressHmac: target.hmac,
      medium,
      redacted: target.redacted,
      source,
      createdTs: this.now(),
    });
    await this.audit.record(actor, "suppress.add", target, added ? "ok" : "exists", { source });
    return added;
  }

  async unsuppress(address: string, actor: string): Promise<boolean> {
    const target = this.audit.target(address)!;
    const removed = await this.suppressions.remove(target.hmac);
    await this.audit.record(actor, "suppress.remove", target, removed ? "ok" : "not_found");
    return removed;
  }

  async isSuppressed(address: string): Promise<boolean> {
    return this.suppressions.has(this.audit.hmac(address));
  }

  suppressed(limit: number, after?: number): Promise<Suppression[]> {
    return this.suppressions.list(limit, after);
  }

  // --- unsubscribe links --------------------------------------------------------------------------

  private sign(h: string, m: string, r: string, e: string): string {
    return createHmac("sha256", this.linkKey)
      .update(`unsubscribe\n${h}\n${m}\n${r}\n${e}`)
      .digest("base64url");
  }

  /** A signed, expiring link that suppresses `address`; it carries only the address's keyed hash. */
  unsubscribeUrl(medium: string, address: string): string {
    const h = this.audit.hmac(address);
    const r = redactIdentifier(address);
    const e = String(this.now() + this.settings.unsubscribeLinkLifetimeMs);
    const q = new URLSearchParams({ h, m: medium, r, e, s: this.sign(h, medium, r, e) });
    return `${this.settings.publicBaseUrl}${this.settings.unsubscribePath}?${q.toString()}`;
  }

  /** Checks a link's signature and expiry: `ok`, `expired` or `invalid`. */
  verifyLink(t: Partial<UnsubscribeToken>): "ok" | "expired" | "invalid" {
    if (!t.h || !t.m || !t.r || !t.e || !t.s) return "invalid";
    if (!/^[0-9a-f]{64}$/.test(t.h) || !/^\d{1,16}$/.test(t.e)) return "invalid";
    if (!constantTimeEqual(this.sign(t.h, t.m, t.r, t.e), t.s)) return "invalid";
    return Number(t.e) < this.now() ? "expired" : "ok";
  }

  /** Suppresses the address of a valid link (the invitee's own request). */
  async unsubscribe(t: UnsubscribeToken): Promise<void> {
    const added = await this.suppressions.add({
      addressHmac: t.h,
      medium: t.m,
      redacted: t.r,
      source: "invitee",
      createdTs: this.now(),
    });
    await this.audit.record(
      "invitee",
      "suppress.add",
      { redacted: t.r, hmac: t.h },
      added ? "ok" : "exists",
      {
        source: "invitee",
      },
    );
  }
}
