import { describe, expect, it } from "vitest";
import { decodeBase64, encodeBase64, encodeBase64Url } from "./base64.js";
import {
  generateSigningKey,
  publicKeyObject,
  signingKeyFromSeed,
  signJson,
  verifyJsonSignature,
} from "./ed25519.js";
import { formatKeyFile, parseKeyFile, rotateKeys } from "./key-file.js";
import { Keyring } from "./keyring.js";

// The signing test vector from the spec appendix "Signing JSON".
const SEED = decodeBase64("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")!;

describe("ed25519 JSON signing", () => {
  const key = signingKeyFromSeed(SEED, "ed25519:1");

  it("matches the spec appendix vectors", () => {
    expect(signJson({}, "domain", key).signatures).toEqual({
      domain: {
        "ed25519:1": "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ",
      },
    });
    expect(signJson({ one: 1, two: "Two" }, "domain", key).signatures.domain?.["ed25519:1"]).toBe(
      "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw",
    );
  });

  it("excludes signatures and unsigned, and verifies", () => {
    const signed = signJson({ a: 1, unsigned: { age: 5 } }, "is.example", key);
    expect(signed.unsigned).toEqual({ age: 5 });
    const pub = publicKeyObject(key.publicKey);
    expect(verifyJsonSignature({ ...signed, unsigned: { other: 1 } }, "is.example", "ed25519:1", pub)).toBe(
      true,
    );
    expect(verifyJsonSignature({ ...signed, a: 2 }, "is.example", "ed25519:1", pub)).toBe(false);
    expect(verifyJsonSignature(signed, "other", "ed25519:1", pub)).toBe(false);
    expect(verifyJsonSignature({ a: 1 }, "is.example", "ed25519:1", pub)).toBe(false);
  });
});

describe("generateSigningKey", () => {
  it("gives a key whose seed rebuilds the same key", () => {
    const fresh = generateSigningKey("ed25519:7");
    expect(fresh.keyId).toBe("ed25519:7");
    expect(fresh.seed).toHaveLength(32);
    const rebuilt = signingKeyFromSeed(fresh.seed, "ed25519:7");
    expect(rebuilt.publicKeyBase64).toBe(fresh.publicKeyBase64);
    expect(signJson({ a: 1 }, "d", fresh).signatures).toEqual(signJson({ a: 1 }, "d", rebuilt).signatures);
    expect(generateSigningKey().publicKeyBase64).not.toBe(fresh.publicKeyBase64);
  });
});

describe("base64", () => {
  it("encodes unpadded and decodes both alphabets, padded or not", () => {
    const bytes = Buffer.from([0xfb, 0xff, 0xfe, 0x01]);
    expect(encodeBase64(bytes)).toBe("+//+AQ");
    expect(encodeBase64Url(bytes)).toBe("-__-AQ");
    for (const s of ["+//+AQ", "+//+AQ==", "-__-AQ", "-__-AQ=="]) expect(decodeBase64(s)).toEqual(bytes);
    expect(decodeBase64("not base64!")).toBeNull();
    expect(decodeBase64("+_")).toBeNull();
    expect(decodeBase64("A")).toBeNull();
  });
});

describe("key files", () => {
  it("reads sydent's `ed25519 0 <seed>` format and writes it back", () => {
    const text = `ed25519 0 ${encodeBase64(SEED)}\n`;
    const [k] = parseKeyFile(text);
    expect(k?.keyId).toBe("ed25519:0");
    expect(formatKeyFile(parseKeyFile(text))).toBe(text);
  });

  it("rejects malformed files with the line number", () => {
    expect(() => parseKeyFile("ed25519 0 short")).toThrow(/:1: the seed/);
    expect(() => parseKeyFile("\nrsa 0 abc")).toThrow(/:2: expected/);
    expect(() => parseKeyFile("")).toThrow(/no key/);
  });

  it("rotates to a new current key and keeps older keys valid in the keyring", () => {
    const old = parseKeyFile(`ed25519 0 ${encodeBase64(SEED)}`);
    const rotated = rotateKeys(old);
    expect(rotated.map((k) => k.keyId)).toEqual(["ed25519:1", "ed25519:0"]);
    const ring = new Keyring(rotated[0]!, rotated);
    expect(ring.isValid(old[0]!.publicKeyBase64)).toBe(true);
    expect(ring.isValid(encodeBase64Url(old[0]!.publicKey))).toBe(true);
    expect(ring.publicKey("ed25519:0")).toBe(old[0]!.publicKeyBase64);
    expect(ring.isValid(encodeBase64(Buffer.alloc(32)))).toBe(false);
  });
});
