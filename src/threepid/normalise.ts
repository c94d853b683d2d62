import { sha256Base64Url } from "../crypto/hash.js";
import { casefold } from "./casefold.js";

/** Normalises an address as stored: emails are case folded; phone numbers are digits as given. */
export function normaliseAddress(medium: string, address: string): string {
  return medium === "email" ? casefold(address) : address;
}

/** The v2 lookup hash: sha256 of `"<address> <medium> <pepper>"`, URL-safe unpadded base64. */
export function lookupHash(address: string, medium: string, pepper: string): string {
  return sha256Base64Url(`${address} ${medium} ${pepper}`);
}
