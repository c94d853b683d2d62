/** ServerKeyCache against a stub key source and an injected clock. */
import { describe, expect, it } from "vitest";
import { generateSeed, signingKeyFromSeed } from "../crypto/ed25519.js";
import type { ServerKeys } from "./client.js";
import { FederationError } from "./errors.js";
import { KEY_CACHE_DEFAULTS, ServerKeyCache, type ServerKeyCacheOptions } from "./key-cache.js";

const T0 = 1_700_000_000_000;
const MIN = 60_000;
const HOUR = 3600_000;

const keyA = signingKeyFromSeed(generateSeed(), "ed25519:a");
const keyB = signingKeyFromSeed(generateSeed(), "ed25519:b");

type Answer = ServerKeys | Error | (() => Promise<ServerKeys>);

/** A key source whose answer per server can be changed; records every call. */
function stubSource(initial: Record<string, Answer> = {}) {
  const answers = new Map<string, Answer>(Object.entries(initial));
  const calls: string[] = [];
  return {
    calls,
    set(server: string, answer: Answer) {
      answers.set(server, answer);
    },
    async getServerKeys(serverName: string): Promise<ServerKeys> {
      calls.push(serverName);
      const a = answers.get(serverName);
      if (a === undefined) throw new FederationError("unreachable", `no such server ${serverName}`);
      if (a instanceof Error) throw a;
      if (typeof a === "function") return a();
      return structuredClone(a);
    },
  };
}

function keysOf(validUntilTs: number, ...keys: (typeof keyA)[]): ServerKeys {
  return { verifyKeys: Object.fromEntries(keys.map((k) => [k.keyId, k.publicKeyBase64])), validUntilTs };
}

function setup(initial: Record<string, Answer>, options: ServerKeyCacheOptions = {}) {
  const clock = { t: T0 };
  const source = stubSource(initial);
  const cache = new ServerKeyCache(source, { now: () => clock.t, ...options });
  return { clock, source, cache };
}

describe("ServerKeyCache", () => {
  it("returns the imported key and reuses the same KeyObject", async () => {
    const { cache, source } = setup({ "hs.test": keysOf(T0 + HOUR, keyA) });
    const first = await cache.getVerifyKey("hs.test", "ed25519:a");
    expect(first).toMatchObject({ status: "ok", validUntilTs: T0 + HOUR });
    if (first.status !== "ok") throw new Error("unreachable");
    expect(first.key.asymmetricKeyType).toBe("ed25519");
    expect(Buffer.from(first.key.export({ format: "jwk" }).x!, "base64url")).toEqual(keyA.publicKey);
    const second = await cache.getVerifyKey("hs.test", "ed25519:a");
    expect(second.status === "ok" && second.key).toBe(first.key);
    expect(source.calls).toEqual(["hs.test"]);
  });

  it("caches until valid_until_ts, then refetches", async () => {
    const { cache, source, clock } = setup({ "hs.test": keysOf(T0 + HOUR, keyA) });
    expect((await cache.getVerifyKey("hs.test", "ed25519:a")).status).toBe("ok");
    clock.t = T0 + HOUR - 1;
    expect((await cache.getVerifyKey("hs.test", "ed25519:a")).status).toBe("ok");
    expect(source.calls).toHaveLength(1);

    source.set("hs.test", keysOf(T0 + 3 * HOUR, keyA));
    clock.t = T0 + HOUR + 1;
    expect(await cache.getVerifyKey("hs.test", "ed25519:a")).toMatchObject({
      status: "ok",
      validUntilTs: T0 + 3 * HOUR,
    });
    expect(source.calls).toHaveLength(2);
  });

  it("refuses a key whose valid_until_ts has passed; the refetch is attempted and rate-limited", async () => {
    // The server announces a validity of 10 s: the entry is kept for the minimum TTL (5 min) anyway.
    const { cache, source, clock } = setup({ "hs.test": keysOf(T0 + 10_000, keyA) });
    expect((await cache.getVerifyKey("hs.test", "ed25519:a")).status).toBe("ok");
    clock.t = T0 + 20_000;
    expect(await cache.getVerifyKey("hs.test", "ed25519:a")).toEqual({
      status: "expired_key",
      validUntilTs: T0 + 10_000,
    });
    // Within a minute of the last fetch: no refetch.
    expect(source.calls).toHaveLength(1);

    clock.t = T0 + MIN;
    expect((await cache.getVerifyKey("hs.test", "ed25519:a")).status).toBe("expired_key");
    expect(source.calls).toHaveLength(2); // attempted; still expired

    source.set("hs.test", keysOf(T0 + 5 * HOUR, keyA));
    clock.t = T0 + 2 * MIN;
    expect((await cache.getVerifyKey("hs.test", "ed25519:a")).status).toBe("ok");
    expect(source.calls).toHaveLength(3);
  });

  it("a server announcing a past valid_until_ts cannot force a fetch per request", async () => {
    const { cache, source, clock } = setup({ "bad.test": keysOf(T0 - 1, keyA) });
    for (let i = 0; i < 20; i++) {
      clock.t = T0 + i * 1000;
      expect((await cache.getVerifyKey("bad.test", "ed25519:a")).status).toBe("expired_key");
    }
    expect(source.calls).toHaveLength(1);
    clock.t = T0 + 5 * MIN + 1; // past the minimum TTL
    await cache.getVerifyKey("bad.test", "ed25519:a");
    expect(source.calls).toHaveLength(2);
  });

  it("checks validity at the requested time", async () => {
    const { cache } = setup({ "hs.test": keysOf(T0 + HOUR, keyA) });
    expect((await cache.getVerifyKey("hs.test", "ed25519:a", T0 + HOUR)).status).toBe("ok");
    expect((await cache.getVerifyKey("hs.test", "ed25519:a", T0 + HOUR + 1)).status).toBe("expired_key");
  });

  it("keeps an entry at most 24 h, and trusts a key at most 7 days after its fetch", async () => {
    const { cache, source, clock } = setup({ "hs.test": keysOf(T0 + 30 * 24 * HOUR, keyA) });
    expect(await cache.getVerifyKey("hs.test", "ed25519:a")).toMatchObject({
      status: "ok",
      validUntilTs: T0 + KEY_CACHE_DEFAULTS.maxKeyValidityMs,
    });
    clock.t = T0 + 24 * HOUR - 1;
    await cache.getVerifyKey("hs.test", "ed25519:a");
    expect(source.calls).toHaveLength(1);
    clock.t = T0 + 24 * HOUR;
    await cache.getVerifyKey("hs.test", "ed25519:a");
    expect(source.calls).toHaveLength(2);
  });

  it("keeps serving still-valid keys when a refresh fails, and rethrows once nothing usable is left", async () => {
    const { cache, source, clock } = setup({ "hs.test": keysOf(T0 + 3 * 24 * HOUR, keyA) });
    await cache.getVerifyKey("hs.test", "ed25519:a");
    const down = new FederationError("unreachable", "down");
    source.set("hs.test", down);
    clock.t = T0 + 25 * HOUR; // entry stale (24 h cap), key valid for two more days
    expect((await cache.getVerifyKey("hs.test", "ed25519:a")).status).toBe("ok");
    expect(source.calls).toHaveLength(2);
    // An unknown key id cannot be looked up while the server is down: the fetch error is reported.
    await expect(cache.getVerifyKey("hs.test", "ed25519:b")).rejects.toBe(down);
    clock.t = T0 + 3 * 24 * HOUR + 1; // key expired; server still down
    await expect(cache.getVerifyKey("hs.test", "ed25519:a")).rejects.toBe(down);
  });

  it("refetches for an unknown key id at most once per minute", async () => {
    const { cache, source, clock } = setup({ "hs.test": keysOf(T0 + 10 * HOUR, keyA) });
    expect(await cache.getVerifyKey("hs.test", "ed25519:b")).toEqual({ status: "unknown_key" });
    expect(source.calls).toHaveLength(1); // the first fetch already answered it
    for (let i = 0; i < 10; i++) {
      clock.t = T0 + i * 5000;
      expect(await cache.getVerifyKey("hs.test", `ed25519:x${i}`)).toEqual({ status: "unknown_key" });
    }
    expect(source.calls).toHaveLength(1);

    // The server rotates in key b; a minute after the last fetch we look again and find it.
    source.set("hs.test", keysOf(T0 + 10 * HOUR, keyA, keyB));
    clock.t = T0 + MIN;
    expect((await cache.getVerifyKey("hs.test", "ed25519:b")).status).toBe("ok");
    expect(source.calls).toHaveLength(2);
    // Known keys never cause a fetch.
    expect((await cache.getVerifyKey("hs.test", "ed25519:a")).status).toBe("ok");
    expect(source.calls).toHaveLength(2);
  });

  it("drops a key the server no longer lists after a refresh", async () => {
    const { cache, source, clock } = setup({ "hs.test": keysOf(T0 + HOUR, keyA, keyB) });
    expect((await cache.getVerifyKey("hs.test", "ed25519:b")).status).toBe("ok");
    source.set("hs.test", keysOf(T0 + 5 * HOUR, keyA));
    clock.t = T0 + HOUR + 1;
    expect((await cache.getVerifyKey("hs.test", "ed25519:b")).status).toBe("unknown_key");
  });

  it("ignores non-ed25519 and undecodable keys", async () => {
    const { cache } = setup({
      "hs.test": {
        verifyKeys: { "curve25519:x": keyA.publicKeyBase64, "ed25519:short": "AAAA", "ed25519:bad": "!!" },
        validUntilTs: T0 + HOUR,
      },
    });
    for (const id of ["curve25519:x", "ed25519:short", "ed25519:bad"]) {
      expect(await cache.getVerifyKey("hs.test", id)).toEqual({ status: "unknown_key" });
    }
  });

  it("coalesces concurrent lookups into one fetch", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const { cache, source } = setup({
      "hs.test": async () => {
        await gate;
        return keysOf(T0 + HOUR, keyA, keyB);
      },
    });
    const pending = [
      ...Array.from({ length: 8 }, () => cache.getVerifyKey("hs.test", "ed25519:a")),
      cache.getVerifyKey("hs.test", "ed25519:b"),
      cache.getVerifyKey("hs.test", "ed25519:unknown"),
    ];
    await new Promise((r) => setTimeout(r, 10));
    expect(source.calls).toHaveLength(1);
    release();
    const results = await Promise.all(pending);
    expect(results.map((r) => r.status)).toEqual([...Array(9).fill("ok"), "unknown_key"]);
    expect(source.calls).toHaveLength(1);
  });

  it("coalesces concurrent failures, then backs off before retrying", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const down = new FederationError("timeout", "slow");
    const { cache, source, clock } = setup({
      "hs.test": async () => {
        await gate;
        throw down;
      },
    });
    const pending = Array.from({ length: 5 }, () =>
      cache.getVerifyKey("hs.test", "ed25519:a").then(
        () => null,
        (e: unknown) => e,
      ),
    );
    release();
    expect(await Promise.all(pending)).toEqual(Array(5).fill(down));
    expect(source.calls).toHaveLength(1);

    clock.t = T0 + KEY_CACHE_DEFAULTS.failureBackoffMs - 1;
    await expect(cache.getVerifyKey("hs.test", "ed25519:a")).rejects.toBe(down);
    expect(source.calls).toHaveLength(1);

    source.set("hs.test", keysOf(T0 + HOUR, keyA));
    clock.t = T0 + KEY_CACHE_DEFAULTS.failureBackoffMs;
    expect((await cache.getVerifyKey("hs.test", "ed25519:a")).status).toBe("ok");
    expect(source.calls).toHaveLength(2);
  });

  it("wraps unexpected source errors as FederationError", async () => {
    const { cache } = setup({ "hs.test": new TypeError("boom") });
    const err = await cache.getVerifyKey("hs.test", "ed25519:a").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FederationError);
    expect(err).toMatchObject({ kind: "unreachable" });
    expect((err as Error).cause).toBeInstanceOf(TypeError);
  });

  it("refuses invalid server names without calling the source", async () => {
    const { cache, source } = setup({});
    for (const name of ["", "bad name", "a/b", "x:0", "@u:hs.test"]) {
      await expect(cache.getVerifyKey(name, "ed25519:a")).rejects.toMatchObject({
        kind: "invalid_server_name",
      });
    }
    expect(source.calls).toEqual([]);
    expect(cache.size).toBe(0);
  });

  it("keeps at most maxServers servers (least recently used dropped)", async () => {
    const initial = Object.fromEntries(
      ["a.test", "b.test", "c.test"].map((s) => [s, keysOf(T0 + HOUR, keyA)]),
    );
    const { cache, source } = setup(initial, { maxServers: 2 });
    await cache.getVerifyKey("a.test", "ed25519:a");
    await cache.getVerifyKey("b.test", "ed25519:a");
    await cache.getVerifyKey("a.test", "ed25519:a"); // a is now the most recent
    await cache.getVerifyKey("c.test", "ed25519:a"); // evicts b
    expect(cache.size).toBe(2);
    expect(source.calls).toEqual(["a.test", "b.test", "c.test"]);
    await cache.getVerifyKey("a.test", "ed25519:a");
    expect(source.calls).toHaveLength(3);
    await cache.getVerifyKey("b.test", "ed25519:a");
    expect(source.calls).toEqual(["a.test", "b.test", "c.test", "b.test"]);
  });
});
