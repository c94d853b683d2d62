/** Unpadded base64 helpers (Matrix appendix "Unpadded Base64"). */

const STANDARD_OR_URLSAFE = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Encodes bytes as unpadded standard base64. */
export function encodeBase64(bytes: Uint8Array): string {
  const s = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 61) end--;
  return s.slice(0, end);
}

/** Encodes bytes as unpadded URL-safe base64. */
export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

/**
 * Decodes standard or URL-safe base64, padded or not. Returns null for anything that is not
 * strictly base64 (Buffer.from would silently skip bad characters).
 */
export function decodeBase64(s: string): Buffer | null {
  if (!STANDARD_OR_URLSAFE.test(s)) return null;
  const body = s.replace(/=+$/, "");
  if (body.length % 4 === 1) return null;
  if (/[+/]/.test(body) && /[-_]/.test(body)) return null;
  return Buffer.from(body.replace(/-/g, "+").replace(/_/g, "/"), "base64");
}
