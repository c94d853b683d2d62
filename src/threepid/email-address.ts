import { casefold } from "./casefold.js";

/** Longest accepted address, as in sydent. */
export const MAX_EMAIL_LENGTH = 500;

// Local part: printable, no whitespace, none of the characters that make parsers disagree.
const LOCAL_PART = /^[^\s\p{Cc}<>()[\]\\,;:"@]{1,64}$/u;
// Domain label: letters, digits, hyphens and any non-ASCII letter (IDN), no leading/trailing hyphen.
const LABEL = /^(?!-)[\p{L}\p{N}\p{M}-]{1,63}(?<!-)$/u;

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
  for (const label of domain.split(".")) {
    if (!LABEL.test(label)) return null;
  }
  return casefold(input);
}
