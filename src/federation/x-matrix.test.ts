/**
 * X-Matrix header parsing, signing and verification. The round trips run against the fake homeserver over HTTPS
 * (its `/_matrix/key/v2/server` is fetched by the real HomeserverClient); its server name is `hs.test:<port>` so that
 * no well-known or SRV lookup is involved.
 */
import { createServer } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createStubDns,
  type FakeHomeserver,
  KEY_PATH,
  startFakeHomeserver,
} from "../../test/support/fake-homeserver.js";
import { generateSeed, type SigningKey, signingKeyFromSeed, signJson } from "../crypto/ed25519.js";
import type { ServerKeys } from "./client.js";
import { HomeserverClient } from "./client.js";
import { FederationError } from "./errors.js";
import { ServerKeyCache } from "./key-cache.js";
import {
  parseXMatrixHeaders,
  signXMatrixRequest,
  type VerifyXMatrixRequestOptions,
  verifyXMatrixRequest,
  XMatrixError,
  type XMatrixErrorReason,
} from "./x-matrix.js";

const SIG = "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ";

describe("parseXMatrixHeaders", () => {
  const ok = (origin: string, key: string, sig: string, destination?: string) =>
    destination === undefined ? { origin, key, sig } : { origin, destination, key, sig };

  it.each<[string, string | string[], ReturnType<typeof ok>[]]>([
    [
      "Synapse's form",
      `X-Matrix origin="hs.example",key="ed25519:a_B1",sig="${SIG}",destination="is.example"`,
      [ok("hs.example", "ed25519:a_B1", SIG, "is.example")],
    ],
    [
      "the spec's form",
      `X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",key="ed25519:key1",sig="ABCDEF"`,
      [ok("origin.hs.example.com", "ed25519:key1", "ABCDEF", "destination.hs.example.com")],
    ],
    [
      "no destination",
      `X-Matrix origin="hs.example",key="ed25519:k",sig="s"`,
      [ok("hs.example", "ed25519:k", "s")],
    ],
    [
      "unquoted values with colons",
      "X-Matrix origin=hs.example:8448,key=ed25519:abc,sig=s1,destination=is.example:443",
      [ok("hs.example:8448", "ed25519:abc", "s1", "is.example:443")],
    ],
    [
      "unquoted IPv6 origin and base64 signature with / + =",
      "X-Matrix origin=[::1]:8448,key=ed25519:k,sig=ab/c+d==",
      [ok("[::1]:8448", "ed25519:k", "ab/c+d==")],
    ],
    [
      "backslash escapes are undone",
      String.raw`X-Matrix origin="hs\.example",key="ed25519:a\"b\\c",sig="\s"`,
      [ok("hs.example", 'ed25519:a"b\\c', "s")],
    ],
    [
      "case-insensitive scheme and names",
      `x-MATRIX ORIGIN="hs.example",Key="ed25519:k",SIG="s",Destination="is.example"`,
      [ok("hs.example", "ed25519:k", "s", "is.example")],
    ],
    [
      "names are case-insensitive but values are not",
      `X-Matrix origin="HS.Example",key="ed25519:K",sig="S"`,
      [ok("HS.Example", "ed25519:K", "S")],
    ],
    [
      "whitespace around commas and '=', several spaces after the scheme, empty elements",
      'X-Matrix   origin = "hs.example" ,\tkey=\t"ed25519:k" ,, sig="s" ,',
      [ok("hs.example", "ed25519:k", "s")],
    ],
    [
      "unknown parameters (even with quoted commas) are ignored, order does not matter",
      `X-Matrix foo=bar,sig="s",other="a,b=c\\"",key="ed25519:k",signature="ignored",origin="hs.example"`,
      [ok("hs.example", "ed25519:k", "s")],
    ],
    [
      "multiple headers, one per key",
      [
        `X-Matrix origin="hs.example",key="ed25519:a",sig="sa"`,
        `X-Matrix origin="hs.example",key="ed25519:b",sig="sb"`,
      ],
      [ok("hs.example", "ed25519:a", "sa"), ok("hs.example", "ed25519:b", "sb")],
    ],
    [
      "other schemes and broken headers among good ones are skipped",
      [
        "Bearer abc.def",
        `X-Matrix origin="hs.example"`,
        `X-Matrix origin="hs.example",key="ed25519:b",sig="sb"`,
      ],
      [ok("hs.example", "ed25519:b", "sb")],
    ],
  ])("%s", (_name, input, expected) => {
    expect(parseXMatrixHeaders(input)).toEqual(expected);
  });

  it.each<[string, unknown]>([
    ["undefined", undefined],
    ["empty string", ""],
    ["empty list", []],
    ["another scheme", "Bearer abc"],
    ["scheme only", "X-Matrix"],
    ["scheme and spaces", "X-Matrix   "],
    ["no space after the scheme", `X-Matrixorigin="hs.example",key="ed25519:k",sig="s"`],
    ["a different scheme with a prefix", `X-Matrix2 origin="hs.example",key="ed25519:k",sig="s"`],
    ["missing origin", `X-Matrix key="ed25519:k",sig="s"`],
    ["missing key", `X-Matrix origin="hs.example",sig="s"`],
    ["missing sig", `X-Matrix origin="hs.example",key="ed25519:k"`],
    ["'signature' instead of 'sig'", `X-Matrix origin="hs.example",key="ed25519:k",signature="s"`],
    ["empty origin", `X-Matrix origin="",key="ed25519:k",sig="s"`],
    ["invalid origin", `X-Matrix origin="hs.example/path",key="ed25519:k",sig="s"`],
    ["origin with userinfo", `X-Matrix origin="u@hs.example",key="ed25519:k",sig="s"`],
    ["origin with a bad port", "X-Matrix origin=hs.example:0,key=ed25519:k,sig=s"],
    ["empty key", `X-Matrix origin="hs.example",key="",sig="s"`],
    ["key with a space", `X-Matrix origin="hs.example",key="ed25519: k",sig="s"`],
    ["unterminated quote", `X-Matrix origin="hs.example,key="ed25519:k",sig="s`],
    ["junk after a quoted value", `X-Matrix origin="hs.example"x,key="ed25519:k",sig="s"`],
    ["missing '='", `X-Matrix origin "hs.example",key="ed25519:k",sig="s"`],
    ["a parameter without a name", `X-Matrix ="x",origin="hs.example",key="ed25519:k",sig="s"`],
    ["repeated origin", `X-Matrix origin="a.example",origin="hs.example",key="ed25519:k",sig="s"`],
    ["control character in a quoted value", `X-Matrix origin="hs.example",key="ed25519:\u0001",sig="s"`],
    ["trailing backslash", `X-Matrix origin="hs.example",key="ed25519:k",sig="s\\`],
    ["binary junk", '\u0000\u00ff\ud800 X-Matrix ===,,,"""'],
    ["an over-long header", `X-Matrix origin="hs.example",key="ed25519:k",sig="s",pad="${"x".repeat(9000)}"`],
    ["a number", 42],
    ["a list of non-strings", [null, 1, {}]],
  ])("returns [] for %s", (_name, input) => {
    expect(parseXMatrixHeaders(input as string)).toEqual([]);
  });
});

describe("signXMatrixRequest", () => {
  const key = signingKeyFromSeed(Buffer.alloc(32, 7), "ed25519:k1");

  it("produces a header that parses back and signs destination_is", () => {
    const header = signXMatrixRequest({
      method: "POST",
      uri: "/_matrix/identity/v2/3pid/unbind",
      body: { mxid: "@a:hs.example" },
      origin: "hs.example",
      destination: "is.example",
      key,
    });
    expect(header).toMatch(
      /^X-Matrix origin="hs\.example",destination="is\.example",key="ed25519:k1",sig="[^"]+"$/,
    );
    const [parsed] = parseXMatrixHeaders(header);
    const expected = signJson(
      {
        method: "POST",
        uri: "/_matrix/identity/v2/3pid/unbind",
        origin: "hs.example",
        destination_is: "is.example",
        content: { mxid: "@a:hs.example" },
      },
      "hs.example",
      key,
    );
    expect(parsed).toEqual({
      origin: "hs.example",
      destination: "is.example",
      key: "ed25519:k1",
      sig: expected.signatures["hs.example"]!["ed25519:k1"],
    });
  });

  it("omits content without a body and can sign `destination` instead", () => {
    const base = { method: "GET", uri: "/x?y=1", origin: "hs.example", destination: "is.example", key };
    const sigOf = (h: string) => parseXMatrixHeaders(h)[0]!.sig;
    const noContent = signJson(
      { method: "GET", uri: "/x?y=1", origin: "hs.example", destination_is: "is.example" },
      "hs.example",
      key,
    );
    expect(sigOf(signXMatrixRequest(base))).toBe(noContent.signatures["hs.example"]!["ed25519:k1"]);
    expect(sigOf(signXMatrixRequest({ ...base, body: null }))).toBe(
      noContent.signatures["hs.example"]!["ed25519:k1"],
    );
    const s2s = signJson(
      { method: "GET", uri: "/x?y=1", origin: "hs.example", destination: "is.example" },
      "hs.example",
      key,
    );
    expect(sigOf(signXMatrixRequest({ ...base, destinationField: "destination" }))).toBe(
      s2s.signatures["hs.example"]!["ed25519:k1"],
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Starts the fake homeserver as `hs.test:<port>` (its key response must name exactly that server). */
async function startNamedFake(): Promise<FakeHomeserver> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    try {
      return await startFakeHomeserver({ serverName: `hs.test:${port}`, port });
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

async function reasonOf(p: Promise<unknown>): Promise<XMatrixError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(XMatrixError);
    return e as XMatrixError;
  }
  throw new Error("expected an XMatrixError");
}

const IS_NAME = "is.example";
const UNBIND = "/_matrix/identity/v2/3pid/unbind";

describe("verifyXMatrixRequest against the fake homeserver", () => {
  let hs: FakeHomeserver;
  let client: HomeserverClient;
  let origin: string;
  let hsKey: SigningKey;
  let clock: { t: number };
  let keys: ServerKeyCache;

  beforeAll(async () => {
    hs = await startNamedFake();
    origin = hs.serverName;
    hsKey = signingKeyFromSeed(hs.signingKey.seed, hs.signingKey.keyId);
    client = new HomeserverClient({
      dns: createStubDns({ hosts: { "hs.test": "127.0.0.1" } }),
      ipAllowlist: ["127.0.0.1/32"],
      verifyCertificates: false,
      connectTimeoutMs: 2000,
      requestTimeoutMs: 3000,
    });
  });

  afterAll(async () => {
    await client?.close();
    await hs?.close();
  });

  beforeEach(() => {
    hs.clearLogs();
    hs.route("GET", KEY_PATH, null);
    clock = { t: Date.now() };
    keys = new ServerKeyCache(client, { now: () => clock.t });
  });

  const body = () => ({
    mxid: `@alice:${origin}`,
    threepid: { medium: "email", address: "alice@example.org" },
  });

  function signed(overrides: Partial<Parameters<typeof signXMatrixRequest>[0]> = {}): string {
    return signXMatrixRequest({
      method: "POST",
      uri: UNBIND,
      body: body(),
      origin,
      destination: IS_NAME,
      key: hsKey,
      ...overrides,
    });
  }

  function verifyWith(
    headers: string | string[] | undefined,
    overrides: Partial<VerifyXMatrixRequestOptions> = {},
  ) {
    return verifyXMatrixRequest({
      method: "POST",
      uri: UNBIND,
      body: body(),
      headers,
      ownServerName: IS_NAME,
      keys,
      ...overrides,
    });
  }

  const keyFetches = () => hs.requestsTo(KEY_PATH).length;

  it("accepts a correctly signed request, fetching the keys once over HTTPS", async () => {
    expect(await verifyWith(signed())).toEqual({ origin, keyId: hs.signingKey.keyId });
    expect(hs.requestsTo(KEY_PATH)).toMatchObject([{ method: "GET", host: origin, sni: "hs.test" }]);
    // Cached: a second request makes no second fetch.
    expect(await verifyWith(signed())).toEqual({ origin, keyId: hs.signingKey.keyId });
    expect(keyFetches()).toBe(1);
  });

  it("accepts a header without destination, and a body-less request", async () => {
    const header = signed().replace(`,destination="${IS_NAME}"`, "");
    expect(parseXMatrixHeaders(header)[0]?.destination).toBeUndefined();
    expect((await verifyWith(header)).origin).toBe(origin);
    const noBody = signed({ method: "GET", uri: "/x?a=1&b=%20", body: undefined });
    expect((await verifyWith(noBody, { method: "GET", uri: "/x?a=1&b=%20", body: undefined })).origin).toBe(
      origin,
    );
    expect(
      (await reasonOf(verifyWith(noBody, { method: "GET", uri: "/x?a=1&b=%20", body: {} }))).reason,
    ).toBe("bad_signature");
  });

  it("accepts when one of several headers verifies", async () => {
    const stranger = signingKeyFromSeed(generateSeed(), hs.signingKey.keyId);
    const forged = signed({ key: stranger });
    expect((await verifyWith([forged, signed()])).origin).toBe(origin);
    expect((await verifyWith([signed(), forged])).origin).toBe(origin);
  });

  it("refuses a forged signature", async () => {
    const stranger = signingKeyFromSeed(generateSeed(), hs.signingKey.keyId);
    const err = await reasonOf(verifyWith(signed({ key: stranger })));
    expect(err.reason).toBe("bad_signature");
    expect(err.origin).toBe(origin);
    const garbage = signed().replace(/sig="[^"]+"/, 'sig="not-base64!"');
    expect((await reasonOf(verifyWith(garbage))).reason).toBe("bad_signature");
  });

  it.each<[string, Partial<VerifyXMatrixRequestOptions>]>([
    ["a modified body", { body: { ...body(), mxid: "@mallory:hs.test" } }],
    ["an added body field", { body: { ...body(), extra: 1 } }],
    ["a missing body", { body: undefined }],
    ["a modified uri", { uri: `${UNBIND}?x=1` }],
    ["a modified method", { method: "PUT" }],
    ["another destination_is (own server name)", { ownServerName: "other.example" }],
  ])("refuses %s", async (_name, overrides) => {
    const header = signed().replace(`,destination="${IS_NAME}"`, "");
    expect((await reasonOf(verifyWith(header, overrides))).reason).toBe("bad_signature");
  });

  it("refuses a request signed with `destination` instead of `destination_is`", async () => {
    const header = signed({ destinationField: "destination" });
    expect((await reasonOf(verifyWith(header))).reason).toBe("bad_signature");
  });

  it("refuses a wrong destination without fetching keys", async () => {
    const err = await reasonOf(verifyWith(signed({ destination: "other.example" })));
    expect(err.reason).toBe("wrong_destination");
    // Even if another header has the right destination.
    expect((await reasonOf(verifyWith([signed(), signed({ destination: "other.example" })]))).reason).toBe(
      "wrong_destination",
    );
    expect(keyFetches()).toBe(0);
  });

  it("refuses an unknown key id, and refetches at most once a minute", async () => {
    const other = signingKeyFromSeed(hs.signingKey.seed, "ed25519:other");
    for (let i = 0; i < 10; i++) {
      clock.t += 1000;
      expect((await reasonOf(verifyWith(signed({ key: other })))).reason).toBe("unknown_key");
    }
    expect(keyFetches()).toBe(1);
    clock.t += 60_000;
    expect((await reasonOf(verifyWith(signed({ key: other })))).reason).toBe("unknown_key");
    expect(keyFetches()).toBe(2);
    // Unsupported algorithms never cause a fetch.
    clock.t += 120_000;
    const curve = signed().replace(/key="[^"]+"/, 'key="curve25519:x"');
    expect((await reasonOf(verifyWith(curve))).reason).toBe("unknown_key");
    expect(keyFetches()).toBe(2);
    // The real key still works without another fetch.
    expect((await verifyWith(signed())).origin).toBe(origin);
    expect(keyFetches()).toBe(2);
  });

  it("refuses a key whose valid_until_ts has passed, and refetches when the cache expires", async () => {
    let validUntil = Date.now() - 1000;
    hs.route("GET", KEY_PATH, (_req, res) => {
      const doc = signJson(
        {
          server_name: origin,
          valid_until_ts: validUntil,
          verify_keys: { [hsKey.keyId]: { key: hsKey.publicKeyBase64 } },
          old_verify_keys: {},
        },
        origin,
        hsKey,
      );
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(doc));
    });
    expect((await reasonOf(verifyWith(signed()))).reason).toBe("expired_key");
    expect((await reasonOf(verifyWith(signed()))).reason).toBe("expired_key");
    expect(keyFetches()).toBe(1);

    // The server renews its key: a minute later the refetch picks it up.
    validUntil = clock.t + 3600_000;
    clock.t += 60_000;
    expect((await verifyWith(signed())).origin).toBe(origin);
    expect(keyFetches()).toBe(2);
    // Cached until valid_until_ts...
    clock.t = validUntil - 1;
    expect((await verifyWith(signed())).origin).toBe(origin);
    expect(keyFetches()).toBe(2);
    // ...then refetched.
    validUntil += 3600_000;
    clock.t += 2;
    expect((await verifyWith(signed())).origin).toBe(origin);
    expect(keyFetches()).toBe(3);
  });

  it("checks key validity at the request time given by `now`", async () => {
    await verifyWith(signed());
    const err = await reasonOf(verifyWith(signed(), { now: () => Date.now() + 48 * 3600_000 }));
    expect(err.reason).toBe("expired_key");
  });

  it("coalesces concurrent verifications into one fetch", async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => verifyWith(signed())));
    expect(results.every((r) => r.origin === origin)).toBe(true);
    expect(keyFetches()).toBe(1);
  });

  it("reports fetch failures with the FederationError", async () => {
    const gone = signingKeyFromSeed(generateSeed(), "ed25519:k");
    const header = signed({ origin: "gone.test:8448", key: gone });
    const err = await reasonOf(verifyWith(header));
    expect(err.reason).toBe("fetch_failed");
    expect(err.origin).toBe("gone.test:8448");
    expect(err.federationError).toBeInstanceOf(FederationError);
    expect(err.federationError?.kind).toBe("unreachable");
    expect(err.cause).toBe(err.federationError);

    // A server that answers with an error status.
    hs.route("GET", KEY_PATH, (_req, res) => {
      res.writeHead(500, { "content-type": "application/json" });
      res.end('{"errcode":"M_UNKNOWN","error":"x"}');
    });
    const err2 = await reasonOf(verifyWith(signed()));
    expect(err2.reason).toBe("fetch_failed");
    expect(err2.federationError).toMatchObject({ kind: "http_status", status: 500 });
  });
});

describe("verifyXMatrixRequest: header and origin checks", () => {
  const key = signingKeyFromSeed(Buffer.alloc(32, 3), "ed25519:k");
  const calls: string[] = [];
  const source = {
    async getServerKeys(name: string): Promise<ServerKeys> {
      calls.push(name);
      return { verifyKeys: { [key.keyId]: key.publicKeyBase64 }, validUntilTs: Date.now() + 3600_000 };
    },
  };
  const base = (headers: string | string[] | undefined, body: unknown = { a: 1 }) =>
    verifyXMatrixRequest({
      method: "POST",
      uri: UNBIND,
      body,
      headers,
      ownServerName: IS_NAME,
      keys: new ServerKeyCache(source),
    });
  const sign = (origin: string, body: unknown = { a: 1 }) =>
    signXMatrixRequest({ method: "POST", uri: UNBIND, body, origin, destination: IS_NAME, key });

  it.each<[string, string | string[] | undefined, XMatrixErrorReason]>([
    ["no header", undefined, "missing"],
    ["no headers", [], "missing"],
    ["a bearer token", "Bearer abc", "missing"],
    ["a malformed X-Matrix header", "X-Matrix nonsense", "malformed"],
    [
      "an X-Matrix header with an invalid origin",
      `X-Matrix origin="a b",key="ed25519:k",sig="${SIG}"`,
      "malformed",
    ],
    [
      "headers naming two origins",
      [
        `X-Matrix origin="a.test",key="ed25519:k",sig="${SIG}"`,
        `X-Matrix origin="b.test",key="ed25519:k",sig="${SIG}"`,
      ],
      "malformed",
    ],
  ])("%s is refused without fetching", async (_name, headers, reason) => {
    calls.length = 0;
    expect((await reasonOf(base(headers))).reason).toBe(reason);
    expect(calls).toEqual([]);
  });

  it("verifies with a stub key source, and refuses non-canonical bodies without fetching", async () => {
    calls.length = 0;
    expect(await base(sign("a.test"))).toEqual({ origin: "a.test", keyId: "ed25519:k" });
    expect(calls).toEqual(["a.test"]);
    calls.length = 0;
    expect((await reasonOf(base(sign("a.test"), { a: 1.5 }))).reason).toBe("malformed");
    expect(calls).toEqual([]);
  });

  it("refuses a signature that is not 64 bytes without fetching", async () => {
    calls.length = 0;
    const header = `X-Matrix origin="a.test",key="ed25519:k",sig="AAAA"`;
    expect((await reasonOf(base(header))).reason).toBe("bad_signature");
    expect(calls).toEqual([]);
  });

  it("an expired key from the source is reported as expired_key", async () => {
    const clock = { t: 1_000_000 };
    const expiredSource = {
      async getServerKeys(): Promise<ServerKeys> {
        return { verifyKeys: { [key.keyId]: key.publicKeyBase64 }, validUntilTs: 999_999 };
      },
    };
    const err = await reasonOf(
      verifyXMatrixRequest({
        method: "POST",
        uri: UNBIND,
        body: { a: 1 },
        headers: sign("a.test"),
        ownServerName: IS_NAME,
        keys: new ServerKeyCache(expiredSource, { now: () => clock.t }),
      }),
    );
    expect(err.reason).toBe("expired_key");
  });
});
