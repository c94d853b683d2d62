/**
 * libphonenumber-js with its full metadata (`/max`, about 13 MB in memory), loaded at the first phone number
 * Seraph reads: a server that never sees one (no SMS configured, no msisdn requests) never loads it.
 */
import type * as Lib from "libphonenumber-js/max";
import type { CountryCode, PhoneNumber } from "libphonenumber-js/max";
import { lazyModule } from "../core/lazy-module.js";

const phoneLib = lazyModule<typeof Lib>("libphonenumber-js/max");

/** libphonenumber's `parsePhoneNumberFromString`: the number, or undefined when it cannot be parsed. */
export function parsePhoneNumberFromString(
  text: string,
  defaultCountry?: CountryCode,
): PhoneNumber | undefined {
  return phoneLib().parsePhoneNumberFromString(text, defaultCountry);
}

/** Whether libphonenumber knows `country` (ISO 3166-1 alpha-2, upper case). */
export function isSupportedCountry(country: string): boolean {
  return phoneLib().isSupportedCountry(country);
}
