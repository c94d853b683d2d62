import { decodeBase64, encodeBase64 } from "./base64.js";
import type { SigningKey } from "./ed25519.js";

/** A long-term public key as published by this server. */
export interface PublishedKey {
  readonly keyId: string;
  readonly publicKeyBase64: string;
}

/**
 * The long-term keys of this server: the key it signs with now, and every published key that has not been
 * revoked. Older keys stay valid for `/pubkey/isvalid` until an operator revokes them.
 */
export class Keyring {
  private readonly byId = new Map<string, string>();
  private readonly valid = new Set<string>();

  constructor(
    readonly current: SigningKey,
    published: readonly PublishedKey[],
  ) {
    this.byId.set(current.keyId, current.publicKeyBase64);
    this.valid.add(current.publicKeyBase64);
    for (const k of published) {
      if (!this.byId.has(k.keyId)) this.byId.set(k.keyId, k.publicKeyBase64);
      this.valid.add(k.publicKeyBase64);
    }
  }

  /** The public key (unpadded standard base64) published under `keyId`, if any. */
  publicKey(keyId: string): string | undefined {
    return this.byId.get(keyId);
  }

  /** Whether `publicKey` (standard or URL-safe base64, padded or not) is a valid long-term key. */
  isValid(publicKey: string): boolean {
    if (this.valid.has(publicKey)) return true;
    const normalised = normalisePublicKey(publicKey);
    return normalised !== null && this.valid.has(normalised);
  }
}

/** Re-encodes a 32-byte public key given in any base64 form as unpadded standard base64, or null. */
export function normalisePublicKey(publicKey: string): string | null {
  const raw = decodeBase64(publicKey);
  if (raw === null || raw.length !== 32) return null;
  return encodeBase64(raw);
}
