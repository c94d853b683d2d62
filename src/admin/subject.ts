import { MatrixError } from "../core/errors.js";
import { serverPartOfUserId } from "../federation/index.js";
import type { SubjectSelector } from "../store/subjects.js";
import { normaliseEmail } from "../threepid/email-address.js";
import { normaliseAddress } from "../threepid/normalise.js";

/** Raw identifiers as an operator typed them. */
export interface SubjectInput {
  address?: string | undefined;
  medium?: string | undefined;
  mxid?: string | undefined;
}

/** The medium of an address when not given: email when it has an `@`, else a phone number. */
export function guessMedium(address: string): "email" | "msisdn" {
  return address.includes("@") ? "email" : "msisdn";
}

/** Validates and normalises a 3PID as stored (emails case folded, phone numbers digits only). */
export function parseThreepid(address: string, medium?: string): { medium: string; address: string } {
  const m = medium ?? guessMedium(address);
  if (m === "email") {
    const email = normaliseEmail(address);
    if (email === null) throw new MatrixError("M_INVALID_EMAIL", "Invalid email address");
    return { medium: m, address: email };
  }
  if (m === "msisdn") {
    const digits = address.replace(/^\+/, "");
    if (!/^\d{5,20}$/.test(digits)) throw new MatrixError("M_INVALID_ADDRESS", "msisdn must be digits");
    return { medium: m, address: normaliseAddress(m, digits) };
  }
  throw new MatrixError("M_INVALID_PARAM", "medium must be email or msisdn");
}

export function parseMxid(mxid: string): string {
  if (serverPartOfUserId(mxid) === null)
    throw new MatrixError("M_INVALID_PARAM", "mxid is not a Matrix user ID");
  return mxid;
}

/** A subject from `address` (+`medium`) and/or `mxid`; at least one is required. */
export function parseSubject(input: SubjectInput): SubjectSelector & { ids: string[] } {
  const threepid = input.address ? parseThreepid(input.address, input.medium) : undefined;
  const mxid = input.mxid ? parseMxid(input.mxid) : undefined;
  if (!threepid && !mxid) throw new MatrixError("M_MISSING_PARAMS", "Give address (and medium) or mxid");
  return { threepid, mxid, ids: [threepid?.address, mxid].filter((x): x is string => x !== undefined) };
}
