/** The per-destination rules: which regions may receive SMS, and which originator to use. */
import { parsePhoneNumberFromString } from "../../threepid/phone-numbers.js";
import type { SmsConfig } from "./config.js";

function parse(e164: string) {
  const s = e164.trim();
  return parsePhoneNumberFromString(s.startsWith("+") ? s : `+${s}`);
}

/**
 * Whether an SMS may be sent to `e164` (E.164; a missing `+` is tolerated): the rule of the number's region
 * (ISO 3166-1 alpha-2 as libphonenumber determines it, so `+1 613…` is `CA`, `+44 7911…` may be `GG`), else
 * `default_country_rule` (also for valid non-geographic numbers such as `+800…`).
 * Fails closed: a number libphonenumber cannot parse or does not consider valid is never allowed (its region is
 * unknown, so a per-region `reject` could otherwise be bypassed); callers should already have answered
 * `M_INVALID_ADDRESS` for such numbers.
 */
export function smsDestinationAllowed(
  cfg: Pick<SmsConfig, "country_rules" | "default_country_rule">,
  e164: string,
): boolean {
  const p = parse(e164);
  if (!p?.isValid()) return false;
  const rule =
    (p.country !== undefined ? cfg.country_rules[p.country] : undefined) ?? cfg.default_country_rule;
  return rule === "allow";
}

/**
 * The originator text for `e164`: `originators[<country calling code>]`, else `originators.default`, else
 * `undefined` (the provider then uses its own default sender, e.g. `twilio.from`).
 */
export function originatorFor(cfg: Pick<SmsConfig, "originators">, e164: string): string | undefined {
  const cc = parse(e164)?.countryCallingCode;
  return ((cc !== undefined ? cfg.originators[cc] : undefined) ?? cfg.originators.default)?.text;
}
