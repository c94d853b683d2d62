import type { SigningKey } from "../crypto/ed25519.js";
import { Keyring, normalisePublicKey } from "../crypto/keyring.js";
import type { KeyRepository } from "../store/keys.js";

/** Public keys of this server: long-term (key file + history) and ephemeral (per invite). */
export class KeyService {
  private readonly publicKeyAnswers = new Map<string, string>();

  private constructor(
    private keyring: Keyring,
    private readonly repo: KeyRepository,
    /** A streaming replica, asked first about ephemeral keys (a key it has not replayed yet: the primary). */
    private readonly replica?: Pick<KeyRepository, "ephemeralKeyExists">,
  ) {}

  /**
   * Records every key of the key file as published and builds the keyring from all non-revoked keys.
   * The first key of the file is the one Seraph signs with.
   */
  static async load(
    fileKeys: readonly SigningKey[],
    repo: KeyRepository,
    now: number,
    replica?: Pick<KeyRepository, "ephemeralKeyExists">,
  ): Promise<KeyService> {
    for (const k of [...fileKeys].reverse()) await repo.recordSigningKey(k, now);
    const service = new KeyService(new Keyring(fileKeys[0]!, []), repo, replica);
    await service.refresh();
    return service;
  }

  /** Reloads the set of valid long-term keys (after a revocation). */
  async refresh(): Promise<void> {
    this.keyring = new Keyring(this.keyring.current, await this.repo.validSigningKeys());
  }

  get signingKey(): SigningKey {
    return this.keyring.current;
  }

  /** The public key published under `keyId`, or undefined. */
  publicKey(keyId: string): string | undefined {
    return this.keyring.publicKey(keyId);
  }

  /** The `/pubkey/{keyId}` answer, serialised once per key: `{"public_key":"..."}`, or undefined. */
  publicKeyJson(keyId: string): string | undefined {
    const key = this.keyring.publicKey(keyId);
    if (key === undefined) return undefined;
    let json = this.publicKeyAnswers.get(key);
    if (json === undefined) {
      json = JSON.stringify({ public_key: key });
      this.publicKeyAnswers.set(key, json);
    }
    return json;
  }

  isValidLongTerm(publicKey: string): boolean {
    return this.keyring.isValid(publicKey);
  }

  /** Whether an ephemeral key handed out with an invite is still valid (standard or URL-safe base64). */
  async isValidEphemeral(publicKey: string): Promise<boolean> {
    const normalised = normalisePublicKey(publicKey);
    if (normalised === null) return false;
    if (this.replica && (await this.replica.ephemeralKeyExists(normalised))) return true;
    return this.repo.ephemeralKeyExists(normalised);
  }
}
