import type { Logger } from "pino";
import { redactEmail } from "../threepid/redact.js";

/** Log keys that carry secrets: never written, whatever `log.redact_addresses` says. */
export const SECRET_PATHS = ["req.headers.authorization", "*.password", "*.access_token", "*.client_secret"];

/** Log keys that carry an email address or a phone number (`to` of mail and SMS, `error` of a failed send). */
const ADDRESS_PATHS = ["to", "error"];

/** `+447400123456` → `+44...56`: enough to tell numbers apart while debugging, not enough to dial. */
export function redactPhone(number: string): string {
  const chars = Array.from(number);
  return chars.length > 6 ? `${chars.slice(0, 3).join("")}...${chars.slice(-2).join("")}` : "...";
}

const EMAIL = /[^\s<>"'@,;:()[\]]+@[^\s<>"'@,;:()[\]]+/g;
// Seven digits or more, possibly with a leading + and separators: a phone number in some form.
const PHONE = /\+?\d(?:[\s().-]?\d){6,}/g;

/** Replaces every email address and phone number in `text` by its redacted form. */
export function redactAddresses(text: string): string {
  return text.replace(EMAIL, (m) => redactEmail(m)).replace(PHONE, (m) => redactPhone(m));
}

function censor(value: unknown, path: string[]): unknown {
  const key = path.at(-1);
  if (key !== undefined && ADDRESS_PATHS.includes(key) && path.length === 1) {
    return typeof value === "string" ? redactAddresses(value) : value;
  }
  return "[Redacted]";
}

/**
 * A child of `log` that, besides the secrets, writes email addresses and phone numbers only in redacted
 * form (`log.redact_addresses`, on by default): `ali...@exa...`, `+44...56`.
 */
export function withAddressRedaction(log: Logger): Logger {
  return log.child({}, { redact: { paths: [...SECRET_PATHS, ...ADDRESS_PATHS], censor } });
}
