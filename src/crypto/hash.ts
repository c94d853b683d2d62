import { createHash, hash, randomBytes, timingSafeEqual } from "node:crypto";

/** SHA-256 of a UTF-8 string as unpadded URL-safe base64 (the v2 lookup hash encoding). */
export function sha256Base64Url(input: string): string {
  // One-shot hash (Node >= 20.12): a third of createHash's cost per call (bench/README.md, sydent import).
  return hash("sha256", input, "base64url");
}

/** SHA-256 of a UTF-8 string as hex (used to store access tokens). */
export function sha256Hex(input: string): string {
  return createHash("sha256").update(input, "utf8").digest("hex");
}

const TOKEN_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/** A random string over [0-9a-zA-Z] from crypto.randomBytes, without modulo bias. */
export function randomToken(length: number, alphabet: string = TOKEN_ALPHABET): string {
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < length) {
    const bytes = randomBytes(Math.ceil((length - out.length) * 1.3) + 8);
    for (const b of bytes) {
      if (b >= limit) continue;
      out += alphabet[b % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

/** A random string of decimal digits (SMS codes). */
export function randomDigits(length: number): string {
  return randomToken(length, "0123456789");
}

/** Constant-time comparison of two strings (false when lengths differ). */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  if (x.length !== y.length) {
    timingSafeEqual(x, x);
    return false;
  }
  return timingSafeEqual(x, y);
}
