import { createPublicKey, verify } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { simpleParser } from "mailparser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeBase64 } from "../../src/crypto/base64.js";
import { signingBytes } from "../../src/crypto/ed25519.js";
import { V1, V2 } from "../support/paths.js";
import { BACKEND, call, startSeraph, type TestSeraph } from "../support/seraph.js";

let is: TestSeraph;
beforeAll(async () => {
  is = await startSeraph();
});
afterAll(async () => {
  await is?.close();
});

/** The sign URL inside the join link of an invitation's text part. */
function signUrlOf(text: string): URL {
  const join = /https?:\/\/\S+signurl=\S+/.exec(text)?.[0];
  if (!join) throw new Error("no join link in the mail");
  const hash = new URL(join).hash;
  const params = new URLSearchParams(hash.slice(hash.indexOf("?") + 1));
  return new URL(params.get("signurl") ?? "");
}

function spki(raw: Buffer) {
  return createPublicKey({
    key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]),
    format: "der",
    type: "spki",
  });
}

describe("test set-up", () => {
  it("runs on the backend the project asks for", () => {
    expect(is.seraph.store.dialect).toBe(BACKEND);
  });
});

describe("status and versions", () => {
  it("answers versions, v2 and v1 status", async () => {
    const versions = await call(`${is.url}/_matrix/identity/versions`);
    expect(versions.status).toBe(200);
    expect(versions.body.versions).toEqual(expect.arrayContaining(["r0.3.0", "v1.1", "v1.7", "v1.18"]));
    expect((await call(`${is.url}${V2}`)).body).toEqual({});
    expect((await call(`${is.url}${V1}`)).body).toEqual({});
  });
});

describe("keys", () => {
  it("creates the key file with mode 0600 in sydent's format", () => {
    const path = join(is.dir, "signing.key");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, "utf8")).toMatch(/^ed25519 0 [A-Za-z0-9+/]{43}\n$/);
  });

  it("serves the long-term key under v1 and v2 and validates it", async () => {
    const v2 = await call(`${is.url}${V2}/pubkey/ed25519:0`);
    const v1 = await call(`${is.url}${V1}/pubkey/ed25519:0`);
    expect(v2.status).toBe(200);
    expect(v2.body).toEqual(v1.body);
    const key = v2.body.public_key as string;
    expect(decodeBase64(key)?.length).toBe(32);
    for (const prefix of [V1, V2]) {
      const ok = await call(`${is.url}${prefix}/pubkey/isvalid?public_key=${encodeURIComponent(key)}`);
      expect(ok.body).toEqual({ valid: true });
      const urlSafe = Buffer.from(decodeBase64(key)!).toString("base64url");
      expect((await call(`${is.url}${prefix}/pubkey/isvalid?public_key=${urlSafe}`)).body).toEqual({
        valid: true,
      });
      const bad = await call(`${is.url}${prefix}/pubkey/isvalid?public_key=${"A".repeat(43)}`);
      expect(bad.body).toEqual({ valid: false });
    }
  });

  it("answers 404 M_NOT_FOUND for an unknown key id and M_MISSING_PARAMS without public_key", async () => {
    const missing = await call(`${is.url}${V2}/pubkey/ed25519:99`);
    expect(missing.status).toBe(404);
    expect(missing.body.errcode).toBe("M_NOT_FOUND");
    const noParam = await call(`${is.url}${V2}/pubkey/isvalid`);
    expect(noParam.status).toBe(400);
    expect(noParam.body.errcode).toBe("M_MISSING_PARAMS");
  });
});

describe("HTTP conventions", () => {
  it("404 M_UNRECOGNIZED for unknown paths, 405 for a known path with the wrong method", async () => {
    const unknown = await call(`${is.url}${V2}/nope`);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ errcode: "M_UNRECOGNIZED", error: expect.any(String) });
    const wrong = await call(`${is.url}${V1}/store-invite`, { method: "GET" });
    expect(wrong.status).toBe(405);
    expect(wrong.body.errcode).toBe("M_UNRECOGNIZED");
    const wrongParam = await call(`${is.url}${V2}/pubkey/ed25519:0`, { method: "POST", body: {} });
    expect(wrongParam.status).toBe(405);
  });

  it("sends CORS headers on every response and answers OPTIONS", async () => {
    for (const res of [
      await call(`${is.url}${V2}`),
      await call(`${is.url}/nothing-here`),
      await call(`${is.url}${V1}/store-invite`, { rawBody: "{" }),
    ]) {
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      expect(res.headers.get("access-control-allow-methods")).toBe("GET, POST, PUT, DELETE, OPTIONS");
      expect(res.headers.get("access-control-allow-headers")).toBe(
        "Origin, X-Requested-With, Content-Type, Accept, Authorization",
      );
    }
    const pre = await call(`${is.url}${V2}/store-invite`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST" },
    });
    expect(pre.status).toBe(200);
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("M_NOT_JSON for unparsable or non-object bodies, whatever the content type", async () => {
    for (const [rawBody, type] of [
      ["{not json", "application/json"],
      ["{not json", "text/plain"],
      ["{not json", ""],
      ["[1,2]", "application/json"],
      ['"a string"', "application/json"],
    ] as const) {
      const res = await call(`${is.url}${V1}/store-invite`, {
        rawBody,
        headers: type ? { "content-type": type } : {},
      });
      expect(res.status, `${rawBody} as ${type}`).toBe(400);
      expect(res.body.errcode).toBe("M_NOT_JSON");
    }
  });

  it("accepts JSON whatever the content type says", async () => {
    const res = await call(`${is.url}${V1}/sign-ed25519`, {
      rawBody: JSON.stringify({ mxid: "@a:b", token: "nope", private_key: "A".repeat(43) }),
      headers: { "content-type": "text/plain" },
    });
    expect(res.status).toBe(404);
    expect(res.body.errcode).toBe("M_UNRECOGNIZED");
  });

  it("413 M_TOO_LARGE for a 600 KiB body", async () => {
    const res = await call(`${is.url}${V1}/store-invite`, {
      body: {
        medium: "email",
        address: "a@b.c",
        room_id: "!r:h",
        sender: "@s:h",
        pad: "x".repeat(600 * 1024),
      },
    });
    expect(res.status).toBe(413);
    expect(res.body.errcode).toBe("M_TOO_LARGE");
  });

  it("M_MISSING_PARAMS and M_INVALID_PARAM", async () => {
    const missing = await call(`${is.url}${V1}/store-invite`, { body: { medium: "email" } });
    expect(missing.status).toBe(400);
    expect(missing.body.errcode).toBe("M_MISSING_PARAMS");
    expect(missing.body.error).toMatch(/address.*room_id.*sender/);
    const wrongType = await call(`${is.url}${V1}/store-invite`, {
      body: { medium: "email", address: 42, room_id: "!r:h", sender: "@s:h" },
    });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.errcode).toBe("M_INVALID_PARAM");
  });
});

describe("v2 requires authentication", () => {
  it("store-invite and sign-ed25519 answer 401 M_UNAUTHORIZED without a valid token", async () => {
    for (const path of ["store-invite", "sign-ed25519"]) {
      const res = await call(`${is.url}${V2}/${path}`, { body: {} });
      expect(res.status).toBe(401);
      expect(res.body.errcode).toBe("M_UNAUTHORIZED");
      const withBad = await call(`${is.url}${V2}/${path}`, {
        body: {},
        headers: { authorization: "Bearer nope" },
      });
      expect(withBad.status).toBe(401);
    }
  });
});

describe("store-invite via v1 with the outbox mailer", () => {
  it("stores the invite, writes the mail to the outbox and signs with the ephemeral key", async () => {
    const res = await call(`${is.url}${V1}/store-invite`, {
      body: {
        medium: "email",
        address: "Alice@Example.ORG",
        room_id: "!room:hs.test",
        sender: "@bob:hs.test",
        sender_display_name: "Bob",
        room_name: "Tea",
        custom_thing: "kept",
      },
    });
    expect(res.status).toBe(200);
    const body = res.body as {
      token: string;
      public_key: string;
      public_keys: Array<{ public_key: string; key_validity_url: string }>;
      display_name: string;
    };
    expect(body.token).toMatch(/^[0-9a-zA-Z.=_-]+$/);
    expect(body.display_name).toBe("ali...@exa...");
    const longTerm = (await call(`${is.url}${V1}/pubkey/ed25519:0`)).body.public_key;
    expect(body.public_key).toBe(longTerm);
    expect(body.public_keys[0]).toEqual({
      public_key: longTerm,
      key_validity_url: `${is.url}${V1}/pubkey/isvalid`,
    });
    expect(body.public_keys[1]?.key_validity_url).toBe(`${is.url}${V1}/pubkey/ephemeral/isvalid`);
    const ephemeral = body.public_keys[1]!.public_key;
    const eph = await call(
      `${is.url}${V2}/pubkey/ephemeral/isvalid?public_key=${encodeURIComponent(ephemeral)}`,
    );
    expect(eph.body).toEqual({ valid: true });
    expect(
      (
        await call(
          `${is.url}${V2}/pubkey/ephemeral/isvalid?public_key=${encodeURIComponent(longTerm as string)}`,
        )
      ).body,
    ).toEqual({ valid: false });

    const files = readdirSync(join(is.dir, "outbox"));
    expect(files).toHaveLength(1);
    const mail = readFileSync(join(is.dir, "outbox", files[0]!), "utf8");
    expect(mail).toMatch(/^To: alice@example\.org/m);
    const parsed = await simpleParser(mail);
    expect(parsed.text).toContain(body.token);
  });

  it("signs {mxid, sender, token} with the supplied ephemeral key", async () => {
    const res = await call(`${is.url}${V1}/store-invite`, {
      body: { medium: "email", address: "carol@example.org", room_id: "!r:hs.test", sender: "@dave:hs.test" },
    });
    const token = res.body.token as string;
    const ephemeral = (res.body.public_keys as Array<{ public_key: string }>)[1]!.public_key;
    const store = is.seraph.store;
    expect(
      await store.db.selectFrom("invites").select("token").where("token", "=", token).executeTakeFirst(),
    ).toEqual({
      token,
    });
    // The private key only travels in the email: in the sign URL of the join link.
    const files = readdirSync(join(is.dir, "outbox")).sort();
    const mail = await simpleParser(readFileSync(join(is.dir, "outbox", files[files.length - 1]!)));
    const signUrl = signUrlOf(mail.text ?? "");
    expect(signUrl.searchParams.get("token")).toBe(token);
    const seed = signUrl.searchParams.get("private_key");
    expect(seed, "the invite mail carries the ephemeral private key").toBeTruthy();

    const signed = await call(`${is.url}${V1}/sign-ed25519`, {
      body: { mxid: "@carol:hs.test", token, private_key: seed! },
    });
    expect(signed.status).toBe(200);
    expect(signed.body).toMatchObject({ mxid: "@carol:hs.test", sender: "@dave:hs.test", token });
    const sig = (signed.body.signatures as Record<string, Record<string, string>>)["is.test"]?.["ed25519:0"];
    expect(
      verify(null, signingBytes(signed.body), spki(decodeBase64(ephemeral)!), decodeBase64(sig as string)!),
    ).toBe(true);

    const unknown = await call(`${is.url}${V1}/sign-ed25519`, {
      body: { mxid: "@carol:hs.test", token: "nope", private_key: seed! },
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.errcode).toBe("M_UNRECOGNIZED");
  });
});

describe("router-level errors", () => {
  it("answers a malformed URL and an over-long parameter with Matrix errors and CORS headers", async () => {
    const bad = await call(`${is.url}${V2}/pubkey/%ZZ`);
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe("M_INVALID_PARAM");
    expect(bad.headers.get("access-control-allow-origin")).toBe("*");
    const long = await call(`${is.url}${V2}/pubkey/${"a".repeat(1200)}`);
    expect(long.body.errcode).toMatch(/^M_/);
    expect(long.headers.get("access-control-allow-origin")).toBe("*");
  });
});
