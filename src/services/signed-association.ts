import { type SigningKey, signJson } from "../crypto/ed25519.js";
import type { AssociationRecord } from "../store/associations.js";

/** The association as the spec shows it, signed by this server. */
export interface SignedAssociation {
  address: string;
  medium: string;
  mxid: string;
  not_before: number;
  not_after: number;
  ts: number;
  signatures: Record<string, Record<string, string>>;
}

/**
 * Signs an association with the long-term key: the one builder for what bind answers, v1 lookup answers and
 * onbind sends (canonical JSON makes the key order irrelevant to the signature).
 */
export function signAssociation(
  a: AssociationRecord,
  serverName: string,
  key: SigningKey,
): SignedAssociation {
  return signJson(
    {
      address: a.address,
      medium: a.medium,
      mxid: a.mxid,
      not_before: a.notBefore,
      not_after: a.notAfter,
      ts: a.ts,
    },
    serverName,
    key,
  );
}

/** The association as the spec shows it, without signatures (when no signing key is at hand). */
export function unsignedAssociation(a: AssociationRecord): Omit<SignedAssociation, "signatures"> {
  return {
    address: a.address,
    medium: a.medium,
    mxid: a.mxid,
    not_before: a.notBefore,
    not_after: a.notAfter,
    ts: a.ts,
  };
}
