import type { ResolvedConfig } from "../config/load.js";
import type { Logger } from "../core/logger.js";
import { signJson } from "../crypto/ed25519.js";
import { isFederationError, serverPartOfUserId } from "../federation/index.js";
import type { AssociationRepository } from "../store/associations.js";
import type { InviteRepository } from "../store/invites.js";
import type { OnbindJob, OnbindJobRepository } from "../store/onbind-jobs.js";
import type { Transact } from "../store/repositories.js";
import type { KeyService } from "./keys.js";
import { signAssociation } from "./signed-association.js";

export interface OnbindSettings {
  serverName: string;
  maxAttempts: number;
  maxAgeMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** How long a claimed job stays ours before another instance may take it. */
  leaseMs: number;
  /** Invites older than this are purged, delivered or not. */
  inviteLifetimeMs: number;
}

/** Posts the onbind body to a homeserver (the homeserver client). */
export interface OnbindTransport {
  postOnbind(serverName: string, body: object): Promise<void>;
}

/**
 * Delivers stored invites to the homeserver of the Matrix ID a 3PID was bound to
 * (`/_matrix/federation/v1/3pid/onbind`). Jobs live in the database, so delivery survives restarts, and are
 * claimed with a lease, so that several instances never deliver the same job at once. The guarantee is
 * at-least-once: an instance that dies after the homeserver answered but before recording it will have the
 * job delivered again when its lease expires.
 */
export class OnbindDelivery {
  constructor(
    private readonly settings: OnbindSettings,
    private readonly jobs: OnbindJobRepository,
    private readonly invites: InviteRepository,
    private readonly associations: AssociationRepository,
    private readonly transport: OnbindTransport,
    private readonly transact: Transact,
    private readonly keys: KeyService,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Delivers the jobs that are due; returns how many were attempted. */
  async runDue(limit = 20): Promise<number> {
    const now = this.now();
    const jobs = await this.jobs.claimDue(now, now + this.settings.leaseMs, limit);
    await Promise.all(jobs.map((j) => this.deliver(j)));
    return jobs.length;
  }

  private async deliver(job: OnbindJob): Promise<void> {
    const invites = await this.invites.findByThreepid(job.medium, job.address);
    const assoc = await this.associations.findByThreepid(job.medium, job.address);
    const server = serverPartOfUserId(job.mxid);
    if (invites.length === 0 || !assoc || assoc.mxid !== job.mxid || server === null) {
      await this.jobs.delete(job.id);
      return;
    }
    const key = this.keys.signingKey;
    const signedAssociation = signAssociation(assoc, this.settings.serverName, key);
    // sydent's shape: the signed association plus the invites, each with a `signed` block.
    const body = {
      ...signedAssociation,
      invites: invites.map((i) => ({
        medium: i.medium,
        address: i.address,
        mxid: job.mxid,
        room_id: i.roomId,
        sender: i.sender,
        signed: signJson({ mxid: job.mxid, token: i.token }, this.settings.serverName, key),
      })),
    };
    try {
      await this.transport.postOnbind(server, body);
    } catch (err) {
      const attempts = job.attempts + 1;
      const now = this.now();
      const message = (err as Error).message ?? String(err);
      // A 4xx other than 408/429 will not change by retrying (e.g. the homeserver has no onbind endpoint).
      const status = isFederationError(err) && err.kind === "http_status" ? (err.status ?? 0) : 0;
      const permanent = status >= 400 && status < 500 && status !== 408 && status !== 429;
      if (
        permanent ||
        attempts >= this.settings.maxAttempts ||
        now - job.createdTs >= this.settings.maxAgeMs
      ) {
        this.log.warn({ server, attempts, err: message }, "onbind delivery abandoned");
        await this.jobs.abandon(job.id);
        return;
      }
      const backoff = Math.min(
        this.settings.initialBackoffMs * 2 ** job.attempts,
        this.settings.maxBackoffMs,
      );
      const jitter = Math.floor(Math.random() * Math.min(1000, backoff / 4 + 1));
      await this.jobs.retry(job.id, attempts, now + backoff + jitter, message);
      this.log.info({ server, attempts, retryInMs: backoff + jitter }, "onbind delivery failed, will retry");
      return;
    }
    await this.transact(async (r) => {
      await r.invites.deleteTokens(invites.map((i) => i.token));
      await r.onbindJobs.delete(job.id);
    });
    this.log.info({ server, invites: invites.length }, "onbind delivered");
  }

  /** Purges invites (and their ephemeral keys) older than the invite lifetime. */
  async purgeExpiredInvites(batch = 1000): Promise<number> {
    return this.invites.purgeOlderThan(this.now() - this.settings.inviteLifetimeMs, batch);
  }
}

/** Builds onbind delivery from `onbind.*` (leases outlive the federation request timeout). */
export function createOnbindDelivery(
  config: Pick<ResolvedConfig, "server_name" | "onbind" | "invites" | "federation">,
  deps: {
    jobs: OnbindJobRepository;
    invites: InviteRepository;
    associations: AssociationRepository;
    transport: OnbindTransport;
    transact: Transact;
    keys: KeyService;
    log: Logger;
    now: () => number;
  },
): OnbindDelivery {
  const c = config.onbind;
  return new OnbindDelivery(
    {
      serverName: config.server_name,
      maxAttempts: c.max_attempts,
      maxAgeMs: c.max_age_hours * 3_600_000,
      initialBackoffMs: c.initial_backoff_seconds * 1000,
      maxBackoffMs: c.max_backoff_seconds * 1000,
      leaseMs: Math.max(c.lease_seconds * 1000, config.federation.request_timeout_ms * 2),
      inviteLifetimeMs: config.invites.lifetime_days * 86_400_000,
    },
    deps.jobs,
    deps.invites,
    deps.associations,
    deps.transport,
    deps.transact,
    deps.keys,
    deps.log,
    deps.now,
  );
}
