import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { decodeBase64, encodeBase64 } from "./base64.js";
import { generateSigningKey, type SigningKey, signingKeyFromSeed } from "./ed25519.js";

/**
 * Signing key files use the format shared by sydent and Synapse: one key per line,
 * `ed25519 <version> <unpadded base64 seed>`. The first line is the key Seraph signs with;
 * later lines are older keys that are still published.
 */
export class KeyFileError extends Error {}

const LINE = /^(ed25519)\s+([A-Za-z0-9_]+)\s+([A-Za-z0-9+/_=-]+)$/;

/** Parses the text of a key file. */
export function parseKeyFile(text: string, path = "signing key file"): SigningKey[] {
  const keys: SigningKey[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (!m) {
      throw new KeyFileError(`${path}:${i + 1}: expected "ed25519 <version> <unpadded base64 seed>"`);
    }
    const seed = decodeBase64(m[3]!);
    if (seed === null || seed.length !== 32) {
      throw new KeyFileError(`${path}:${i + 1}: the seed must be 32 bytes of base64`);
    }
    keys.push(signingKeyFromSeed(seed, `${m[1]}:${m[2]}`));
  }
  if (keys.length === 0) throw new KeyFileError(`${path}: no key found`);
  const ids = new Set(keys.map((k) => k.keyId));
  if (ids.size !== keys.length) throw new KeyFileError(`${path}: the same key id appears twice`);
  return keys;
}

/** Formats keys in key-file format. */
export function formatKeyFile(keys: readonly SigningKey[]): string {
  return keys.map((k) => `${k.keyId.replace(":", " ")} ${encodeBase64(k.seed)}\n`).join("");
}

/** Reads the key file at `path`. */
export function readKeyFile(path: string): SigningKey[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new KeyFileError(`cannot read signing key file ${path}: ${(e as Error).message}`);
  }
  return parseKeyFile(text, path);
}

/** Writes keys to `path` with mode 0600, creating the folder if needed. */
export function writeKeyFile(path: string, keys: readonly SigningKey[]): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, formatKeyFile(keys), { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Loads the key file, creating it with a fresh `ed25519:0` key when it does not exist. */
export function loadOrCreateKeyFile(path: string): { keys: SigningKey[]; created: boolean } {
  if (existsSync(path)) return { keys: readKeyFile(path), created: false };
  const keys = [generateSigningKey("ed25519:0")];
  writeKeyFile(path, keys);
  return { keys, created: true };
}

/** Adds a new current key in front of the existing ones; its version is one more than the highest numeric one. */
export function rotateKeys(existing: readonly SigningKey[]): SigningKey[] {
  let next = 0;
  for (const k of existing) {
    const v = Number(k.keyId.split(":")[1]);
    if (Number.isInteger(v) && v >= next) next = v + 1;
  }
  return [generateSigningKey(`ed25519:${next}`), ...existing];
}
