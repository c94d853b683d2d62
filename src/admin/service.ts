import { MatrixError } from "../core/errors.js";
import type { KeyService } from "../services/keys.js";
import { publishAssociation, removeAssociation } from "../services/publish-association.js";
import {
  type SignedAssociation,
  signAssociation,
  unsignedAssociation,
} from "../services/signed-association.js";
import type { KyselyAdminViewRepository, OnbindJobRow, PendingInviteRow } from "../store/admin-views.js";
import type { AssociationRecord, AssociationRepository } from "../store/associations.js";
import type { AuditRow } from "../store/audit-log.js";
import type { Transact } from "../store/repositories.js";
import type { ErasureCounts, KyselySubjectRepository, SubjectRows } from "../store/subjects.js";
import type { InvitePolicy } from "./abuse.js";
import type { Auditor } from "./audit.js";
import { parseMxid, parseSubject, parseThreepid, type SubjectInput } from "./subject.js";

/** How long an association made by an operator is valid (as for bindings made by users: 100 years). */
const ASSOCIATION_LIFETIME_MS = 100 * 365 * 86_400_000;

export interface Paged<T> {
  items: T[];
  /** Pass as `from` to get the next page; null on the last page. */
  next_from: number | null;
}

export interface PageRequest {
  from?: number | undefined;
  limit: number;
}

function paged<T extends { id: number }>(rows: T[], limit: number): Paged<T> {
  return { items: rows, next_from: rows.length === limit ? (rows.at(-1)?.id ?? null) : null };
}

export interface AdminServiceDeps {
  serverName: string;
  views: KyselyAdminViewRepository;
  subjects: KyselySubjectRepository;
  associations: AssociationRepository;
  /** Opens the transaction a bind or unbind runs in (see services/publish-association.ts). */
  transact: Transact;
  policy: InvitePolicy;
  audit: Auditor;
  /** Signs association answers; absent in the CLI when the key file is unavailable. */
  keys?: KeyService | undefined;
  /** Delivers a queued onbind job soon (the running server); the CLI leaves it to the next poll. */
  kickOnbind?: () => void;
  /** Sends an invite's email again (with a new ephemeral key); absent where no mailer is configured. */
  resendInvite?: (id: number) => Promise<boolean>;
  now?: () => number;
}

/**
 * What an operator can do: bindings without validation, subject export and erasure, pending invites and
 * onbind jobs. Every action is appended to the audit log with the operator's name.
 */
export class AdminService {
  private readonly now: () => number;
  constructor(private readonly d: AdminServiceDeps) {
    this.now = d.now ?? Date.now;
  }

  get policy(): InvitePolicy {
    return this.d.policy;
  }

  get audit(): Auditor {
    return this.d.audit;
  }

  // --- bindings -----------------------------------------------------------------------------------

  async listBindings(
    f: { medium?: string | undefined; address?: string | undefined; mxid?: string | undefined },
    p: PageRequest,
  ) {
    const threepid = f.address ? parseThreepid(f.address, f.medium) : undefined;
    const rows = await this.d.views.bindings(
      { medium: threepid?.medium ?? f.medium, address: threepid?.address, mxid: f.mxid },
      { after: p.from, limit: p.limit },
    );
    return paged(rows, p.limit);
  }

  /** Binds a 3PID to a Matrix ID without validation (sydent's internal bind); queues pending invites. */
  async createBinding(
    actor: string,
    input: { medium?: string | undefined; address: string; mxid: string },
  ): Promise<Omit<SignedAssociation, "signatures"> & { signatures?: SignedAssociation["signatures"] }> {
    const threepid = parseThreepid(input.address, input.medium);
    const mxid = parseMxid(input.mxid);
    const now = this.now();
    const record: AssociationRecord = {
      ...threepid,
      mxid,
      ts: now,
      notBefore: now,
      notAfter: now + ASSOCIATION_LIFETIME_MS,
    };
    const signed = this.d.keys && signAssociation(record, this.d.serverName, this.d.keys.signingKey);
    const stored = signed ? { ...record, signedJson: JSON.stringify(signed) } : record;
    const queued = await publishAssociation(this.d.transact, stored, now);
    if (queued) this.d.kickOnbind?.();
    await this.d.audit.record(actor, "binding.create", this.d.audit.target(threepid.address, mxid), "ok", {
      medium: threepid.medium,
      onbind_queued: queued,
    });
    return signed ?? unsignedAssociation(record);
  }

  /**
   * Removes a binding (and its pending onbind job); with `mxid`, only if it maps to that Matrix ID.
   * Nothing is sent to any homeserver. Returns whether a binding was removed.
   */
  async deleteBinding(
    actor: string,
    input: { medium?: string | undefined; address: string; mxid?: string | undefined },
  ): Promise<boolean> {
    const threepid = parseThreepid(input.address, input.medium);
    const existing = await this.d.associations.findByThreepid(threepid.medium, threepid.address);
    const mxid = input.mxid === undefined ? existing?.mxid : parseMxid(input.mxid);
    const removed =
      existing !== undefined &&
      mxid !== undefined &&
      (await removeAssociation(this.d.transact, threepid.medium, threepid.address, mxid));
    await this.d.audit.record(
      actor,
      "binding.delete",
      this.d.audit.target(threepid.address, mxid),
      removed ? "ok" : "not_found",
      { medium: threepid.medium },
    );
    return removed;
  }

  // --- subjects -----------------------------------------------------------------------------------

  /** Everything held about a person (GDPR article 15), including the audit rows about them. */
  async exportSubject(
    actor: string,
    input: SubjectInput,
  ): Promise<SubjectRows & { suppressed: boolean; audit: AuditRow[] }> {
    const s = parseSubject(input);
    const rows = await this.d.subjects.export(s);
    const suppressed = s.threepid ? await this.d.policy.isSuppressed(s.threepid.address) : false;
    const audit: AuditRow[] = [];
    for (const id of s.ids) {
      audit.push(...(await this.d.audit.page({ limit: 1000, targetHmac: this.d.audit.hmac(id) })));
    }
    await this.d.audit.record(actor, "subject.export", this.d.audit.target(...s.ids), "ok");
    return { ...rows, suppressed, audit: dedupe(audit) };
  }

  /** Erases everything held about a person in one transaction (GDPR article 17); counts rows per table. */
  async eraseSubject(actor: string, input: SubjectInput): Promise<ErasureCounts> {
    const s = parseSubject(input);
    const counts = await this.d.subjects.erase(s);
    await this.d.audit.record(actor, "subject.erase", this.d.audit.target(...s.ids), "ok", counts);
    return counts;
  }

  // --- invites and onbind jobs --------------------------------------------------------------------

  async listInvites(
    f: {
      address?: string | undefined;
      sender?: string | undefined;
      roomId?: string | undefined;
      olderThanDays?: number | undefined;
    },
    p: PageRequest,
  ): Promise<Paged<PendingInviteRow>> {
    const address = f.address ? parseThreepid(f.address, "email").address : undefined;
    const rows = await this.d.views.invites(
      {
        address,
        sender: f.sender,
        roomId: f.roomId,
        receivedBefore: f.olderThanDays === undefined ? undefined : this.now() - f.olderThanDays * 86_400_000,
      },
      { after: p.from, limit: p.limit },
    );
    return paged(rows, p.limit);
  }

  /** Revokes an invite: its token and ephemeral key stop working, its pending delivery is cancelled. */
  async revokeInvite(actor: string, id: number): Promise<PendingInviteRow> {
    const revoked = await this.d.views.revokeInvite(id);
    await this.d.audit.record(
      actor,
      "invite.revoke",
      revoked && this.d.audit.target(revoked.address, revoked.sender),
      revoked ? "ok" : "not_found",
      { invite: id },
    );
    if (!revoked) throw new MatrixError("M_NOT_FOUND", "No pending invite with this id");
    return revoked;
  }

  async resendInvite(actor: string, id: number): Promise<void> {
    const invite = await this.d.views.invite(id);
    if (!invite) {
      await this.d.audit.record(actor, "invite.resend", undefined, "not_found", { invite: id });
      throw new MatrixError("M_NOT_FOUND", "No pending invite with this id");
    }
    if (!this.d.resendInvite)
      throw new MatrixError("M_UNRECOGNIZED", "Resending needs the running server", { status: 400 });
    const target = this.d.audit.target(invite.address, invite.sender);
    try {
      await this.d.resendInvite(id);
    } catch (err) {
      await this.d.audit.record(actor, "invite.resend", target, "failed", { invite: id });
      throw err;
    }
    await this.d.audit.record(actor, "invite.resend", target, "ok", { invite: id });
  }

  async listOnbindJobs(f: { failing?: boolean | undefined }, p: PageRequest): Promise<Paged<OnbindJobRow>> {
    return paged(await this.d.views.onbindJobs(f, { after: p.from, limit: p.limit }), p.limit);
  }

  async retryOnbindJob(actor: string, id: number): Promise<void> {
    const job = await this.d.views.onbindJob(id);
    const ok = job !== undefined && (await this.d.views.retryJobNow(id, this.now()));
    await this.d.audit.record(
      actor,
      "onbind.retry",
      job && this.d.audit.target(job.address, job.mxid),
      ok ? "ok" : "not_found",
      { job: id },
    );
    if (!ok) throw new MatrixError("M_NOT_FOUND", "No onbind job with this id");
    this.d.kickOnbind?.();
  }

  async dropOnbindJob(actor: string, id: number): Promise<void> {
    const job = await this.d.views.onbindJob(id);
    const ok = job !== undefined && (await this.d.views.dropJob(id));
    await this.d.audit.record(
      actor,
      "onbind.drop",
      job && this.d.audit.target(job.address, job.mxid),
      ok ? "ok" : "not_found",
      { job: id },
    );
    if (!ok) throw new MatrixError("M_NOT_FOUND", "No onbind job with this id");
  }

  // --- audit --------------------------------------------------------------------------------------

  /** Audit rows, newest first; `about` filters by an address or Matrix ID (matched through its HMAC). */
  async auditPage(q: {
    from?: number | undefined;
    limit: number;
    action?: string | undefined;
    actor?: string | undefined;
    about?: SubjectInput | undefined;
  }): Promise<Paged<AuditRow> & { items: AuditRow[] }> {
    let targetHmac: string | undefined;
    if (q.about && (q.about.address || q.about.mxid)) {
      const s = parseSubject(q.about);
      targetHmac = this.d.audit.hmac(s.ids[0]!);
    }
    const rows = await this.d.audit.page({
      before: q.from,
      limit: q.limit,
      action: q.action,
      actor: q.actor,
      targetHmac,
    });
    return paged(rows, q.limit);
  }
}

function dedupe(rows: AuditRow[]): AuditRow[] {
  const seen = new Set<number>();
  return rows.filter((r) => !seen.has(r.id) && seen.add(r.id)).sort((a, b) => b.id - a.id);
}
