import { domainToASCII, domainToUnicode } from "node:url";
import { casefold } from "./casefold.js";

/** Longest accepted address, as in sydent. */
export const MAX_EMAIL_LENGTH = 500;

// Local part: printable, no whitespace, none of the characters that make parsers disagree, no invisible
// format characters (zero-width, bidi controls, soft hyphen: \p{Cf}) and no lone surrogates (\p{Cs}).
const LOCAL_PART = /^[^\s\p{Cc}\p{Cf}\p{Cs}<>()[\]\\,;:"@]{1,64}$/u;
// An ASCII (IDNA) domain label; the last label is not all digits (IDNA would read `a@123` as an IPv4).
const ASCII_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
// Domain before IDNA: ASCII letters, digits, dots and hyphens, or letters, digits and marks of any script
// (fullwidth forms and ideographic full stops included: IDNA maps them).
const DOMAIN_CHARS = /^[A-Za-z0-9.\-\p{L}\p{N}\p{M}\u3002\uFF0E\uFF61]+$/u;

/**
 * Validates a bare email address (`user@domain`, no display name, brackets or `mailto:`) and returns its
 * canonical form (Unicode case folded), or null when it is not a valid address. `a@b@c` is invalid.
 */
export function normaliseEmail(input: string): string | null {
  if (input.length < 3 || input.length > MAX_EMAIL_LENGTH) return null;
  const at = input.indexOf("@");
  if (at <= 0 || at !== input.lastIndexOf("@")) return null;
  const local = input.slice(0, at);
  const domain = input.slice(at + 1);
  if (!LOCAL_PART.test(local) || local.startsWith(".") || local.endsWith(".") || local.includes("..")) {
    return null;
  }
  if (domain.length === 0 || domain.length > 253) return null;
  if (!DOMAIN_CHARS.test(domain)) return null;
  // IDNA (UTS 46, as browsers and mailers apply it): fullwidth letters, compatibility forms and case are
  // mapped, so the stored address is the address mailed (nodemailer sends the ASCII form of this domain).
  const ascii = domainToASCII(domain);
  if (ascii === "" || ascii.length > 253) return null;
  const labels = ascii.split(".");
  if (!labels.every((l) => ASCII_LABEL.test(l)) || /^\d+$/.test(labels.at(-1) ?? "")) return null;
  return `${casefold(local)}@${casefold(domainToUnicode(ascii))}`;
}
