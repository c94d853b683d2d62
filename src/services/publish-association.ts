import type { AssociationRecord } from "../store/associations.js";
import { type Transact, writingHashes } from "../store/repositories.js";
import { lookupHash } from "../threepid/normalise.js";

/**
 * Publishes an association in one transaction: the association itself, its lookup hash under every live
 * pepper and, when invites wait for this 3PID, an onbind job. Resolves with whether a job was queued.
 * Used by `3pid/bind` and by the operator's bind (admin API, sydent's internal bind).
 */
export function publishAssociation(
  transact: Transact,
  record: AssociationRecord,
  now: number,
): Promise<boolean> {
  return writingHashes(transact)(async (r) => {
    const id = await r.associations.upsert(record);
    const peppers = await r.peppers.live();
    await r.hashes.insert(
      peppers.map((p) => ({
        pepperId: p.id,
        associationId: id,
        hash: lookupHash(record.address, record.medium, p.pepper),
      })),
    );
    await r.onbindJobs.clearFor(record.medium, record.address);
    if (!(await r.invites.existsFor(record.medium, record.address))) return false;
    await r.onbindJobs.queue(record, now);
    return true;
  });
}

/** Removes an association that maps to `mxid`, and its pending onbind jobs; resolves with whether it existed. */
export function removeAssociation(
  transact: Transact,
  medium: string,
  address: string,
  mxid: string,
): Promise<boolean> {
  // Its hashes go by the foreign key's cascade.
  return writingHashes(transact)(async (r) => {
    const removed = await r.associations.delete(medium, address, mxid);
    if (removed) await r.onbindJobs.clearFor(medium, address, mxid);
    return removed;
  });
}
