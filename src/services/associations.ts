import { MatrixError } from "../core/errors.js";
import { serverPartOfUserId } from "../federation/index.js";
import type { AssociationRecord } from "../store/associations.js";
import type { Repositories, Transact } from "../store/repositories.js";
import { normaliseAddress } from "../threepid/normalise.js";
import type { KeyService } from "./keys.js";
import { publishAssociation, removeAssociation } from "./publish-association.js";
import { type SignedAssociation, signAssociation } from "./signed-association.js";
import type { ValidationService } from "./validation.js";

/** How long an association is valid (sydent: 100 years). */
const ASSOCIATION_LIFETIME_MS = 100 * 365 * 86_400_000;

/** How an unbind request proved its right. */
export type UnbindProof =
  | { kind: "session"; sid: string; clientSecret: string }
  /** The request was signed by this homeserver (X-Matrix, checked by the caller). */
  | { kind: "homeserver"; origin: string };

/** Binding and unbinding 3PIDs to Matrix IDs; queues invite delivery when a bound 3PID had invites. */
export class AssociationService {
  constructor(
    private readonly serverName: string,
    private readonly repos: Pick<Repositories, "associations">,
    private readonly transact: Transact,
    private readonly validation: ValidationService,
    private readonly keys: KeyService,
    /** Called after a bind queued an onbind delivery (to deliver at once rather than at the next poll). */
    private readonly onQueued: () => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Signs an association with the long-term key. */
  sign(a: AssociationRecord): SignedAssociation {
    return signAssociation(a, this.serverName, this.keys.signingKey);
  }

  /**
   * `3pid/bind`: publishes the association of a validated session's 3PID with `mxid`. `caller` is the
   * authenticated user in v2, who may only bind their own Matrix ID.
   */
  async bind(sid: string, clientSecret: string, mxid: string, caller?: string): Promise<SignedAssociation> {
    if (serverPartOfUserId(mxid) === null)
      throw new MatrixError("M_INVALID_PARAM", "mxid is not a valid Matrix user ID");
    if (caller !== undefined && caller !== mxid) {
      throw new MatrixError("M_UNAUTHORIZED", "This user is prohibited from binding to the mxid", {
        status: 403,
      });
    }
    const threepid = await this.validation.validatedThreepid(sid, clientSecret);
    const now = this.now();
    const record: AssociationRecord = {
      medium: threepid.medium,
      address: threepid.address,
      mxid,
      ts: now,
      notBefore: now,
      notAfter: now + ASSOCIATION_LIFETIME_MS,
    };
    // Signed once here and stored, so that a v1 lookup writes stored bytes (sydent stores its sgAssoc too).
    const signed = this.sign(record);
    const queued = await publishAssociation(
      this.transact,
      { ...record, signedJson: JSON.stringify(signed) },
      now,
    );
    if (queued) this.onQueued();
    return signed;
  }

  /**
   * `3pid/unbind`: removes the association when the proof holds: a validated session for this very 3PID,
   * or a signature by the homeserver of `mxid`. Unbinding what is not bound succeeds (idempotent).
   */
  async unbind(mxid: string, medium: string, address: string, proof: UnbindProof): Promise<void> {
    const server = serverPartOfUserId(mxid);
    if (server === null) throw new MatrixError("M_INVALID_PARAM", "mxid is not a valid Matrix user ID");
    const normalised = normaliseAddress(medium, address);
    if (proof.kind === "homeserver") {
      if (proof.origin !== server) {
        throw new MatrixError("M_FORBIDDEN", "Origin server name does not match mxid");
      }
    } else {
      const threepid = await this.validation.validatedThreepid(proof.sid, proof.clientSecret);
      if (threepid.medium !== medium || threepid.address !== normalised) {
        throw new MatrixError("M_FORBIDDEN", "This session is not for this 3PID");
      }
    }
    await removeAssociation(this.transact, medium, normalised, mxid);
  }

  /**
   * Background work: signs up to `batch` associations that have no stored signature (bound before
   * signatures were stored, or whose key was revoked) and stores it; returns how many it signed.
   */
  async signStored(batch = 500): Promise<number> {
    const signed = (await this.repos.associations.unsigned(batch)).map(
      (a) => [a, JSON.stringify(this.sign(a))] as const,
    );
    if (signed.length === 0) return 0;
    // One transaction for the batch: one commit, not one per row.
    return this.transact(async (r) => {
      let stored = 0;
      for (const [a, json] of signed) if (await r.associations.storeSignature(a.id, a, json)) stored++;
      return stored;
    });
  }

  /**
   * v1 `GET /lookup` as JSON text: the signed association stored at bind (or imported from sydent, byte for
   * byte); signed now when none is stored (a revoked key's signatures are forgotten); undefined when not bound.
   */
  async lookupSignedJson(medium: string, address: string): Promise<string | undefined> {
    const a = await this.repos.associations.findByThreepid(medium, normaliseAddress(medium, address));
    if (!a) return undefined;
    return a.signedJson ?? JSON.stringify(this.sign(a));
  }
}
