import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/crypto/hash.js";
import { HomeserverClient } from "../../src/federation/index.js";
import { createStubDns } from "../support/fake-homeserver.js";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";
import { type SmtpSink, startSmtpSink } from "../support/smtp-sink.js";

// Bad input that used to reach a 500 or slip through: deeply nested JSON, unreachable homeservers that
// leaked resolver details, invisible characters and non-normalised domains in email addresses, RFC 2047
// encoded-words smuggled into the Subject through a display name.

const V1 = "/_matrix/identity/api/v1";
const V2 = "/_matrix/identity/v2";

let sink: SmtpSink;
let is: TestSeraph;
const dns = createStubDns({ hosts: { "private.test": "10.1.2.3", "closed.test": "127.0.0.1" } });

beforeAll(async () => {
  sink = await startSmtpSink();
  is = await startSeraph(
    { email: { smtp: { host: sink.host, port: sink.port, tls: "none" } } },
    {
      homeservers: new HomeserverClient({
        dns,
        ipAllowlist: ["127.0.0.1/32"],
        verifyCertificates: false,
        connectTimeoutMs: 500,
        requestTimeoutMs: 1000,
      }),
    },
  );
});
afterAll(async () => {
  await is?.close();
  await sink?.close();
});
beforeEach(() => sink.clear());

const invite = (extra: Record<string, unknown>) =>
  call(`${is.url}${V1}/store-invite`, {
    body: {
      medium: "email",
      address: "invitee@example.org",
      room_id: "!r:hs.test",
      sender: "@s:hs.test",
      ...extra,
    },
  });

describe("deeply nested JSON", () => {
  it("is refused at parse time with 400 M_BAD_JSON, and the server keeps serving", async () => {
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    const raw = `{"medium":"email","address":"a@example.org","room_id":"!r:h","sender":"@s:h","x":${deep}}`;
    const token = "deep-json-token";
    await is.seraph.store.repos.accounts.createToken("@deep:hs.test", sha256Hex(token), Date.now(), null);
    for (const path of [`${V1}/store-invite`, `${V2}/lookup`, `${V1}/bulk_lookup`]) {
      const res = await call(`${is.url}${path}`, {
        rawBody: raw,
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      });
      expect(res.status, path).toBe(400);
      expect(res.body.errcode, path).toBe("M_BAD_JSON");
    }
    // Ordinary nesting is fine.
    expect((await invite({ room_name: "r", extra: { a: [{ b: [1] }] } })).status).toBe(200);
  });
});

describe("a body sent without a valid token", () => {
  it("is not read: 401 M_UNAUTHORIZED whatever it holds, and the server keeps serving", async () => {
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    for (const [rawBody, authorization] of [
      [`{"x":${deep}}`, undefined],
      ["not json", "Bearer no-such-token"],
      [`{"addresses":"${"a".repeat(600_000)}"}`, undefined],
    ] as const) {
      const res = await call(`${is.url}${V2}/lookup`, {
        rawBody,
        headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
      });
      expect(res.status).toBe(401);
      expect(res.body.errcode).toBe("M_UNAUTHORIZED");
    }
    expect((await call(`${is.url}${V2}`)).status).toBe(200);
    // With a valid token the body is read and judged as before.
    const token = "body-after-token";
    await is.seraph.store.repos.accounts.createToken("@body:hs.test", sha256Hex(token), Date.now(), null);
    const headers = { "content-type": "application/json", authorization: `Bearer ${token}` };
    const big = await call(`${is.url}${V2}/lookup`, {
      rawBody: `{"addresses":"${"a".repeat(600_000)}"}`,
      headers,
    });
    expect([big.status, big.body.errcode]).toEqual([413, "M_TOO_LARGE"]);
    const bad = await call(`${is.url}${V2}/lookup`, { rawBody: "not json", headers });
    expect([bad.status, bad.body.errcode]).toEqual([400, "M_NOT_JSON"]);
  });
});

describe("register with a homeserver that cannot be reached", () => {
  it("gives one answer without internal details, whether the name is unknown, private or refused", async () => {
    const answers: string[] = [];
    for (const name of ["nowhere.test", "private.test", "closed.test:1"]) {
      const res = await call(`${is.url}${V2}/account/register`, {
        body: { access_token: "t", matrix_server_name: name },
      });
      expect(res.status, name).toBe(401);
      expect(res.body.errcode, name).toBe("M_UNAUTHORIZED");
      expect(res.text).not.toMatch(
        /ENOTFOUND|ECONNREFUSED|EAI_AGAIN|10\.1\.2\.3|127\.0\.0\.1|forbidden|resolve/i,
      );
      answers.push(res.text);
    }
    expect(new Set(answers).size).toBe(1);
  });
});

describe("email addresses", () => {
  it.each([
    ["a lone surrogate", "ali\ud800ce@example.org"],
    ["a zero-width space", "ali\u200bce@example.org"],
    ["a zero-width joiner in the domain", "alice@exa\u200dmple.org"],
    ["a bidi override", "\u202eecila@example.org"],
    ["a soft hyphen", "ali\u00adce@example.org"],
  ])("with %s are refused with M_INVALID_EMAIL", async (_what, address) => {
    const req = await call(`${is.url}${V1}/validate/email/requestToken`, {
      body: { client_secret: "s1", email: address, send_attempt: 1 },
    });
    expect(req.status).toBe(400);
    expect(req.body.errcode).toBe("M_INVALID_EMAIL");
    const inv = await invite({ address });
    expect(inv.status).toBe(400);
    expect(inv.body.errcode).toBe("M_INVALID_EMAIL");
  });

  it("with a fullwidth domain are normalised before they are stored, so the stored address is mailed", async () => {
    const req = await call(`${is.url}${V1}/validate/email/requestToken`, {
      body: { client_secret: "s2", email: "alice@ｅｘａｍｐｌｅ．org", send_attempt: 1 },
    });
    expect(req.status).toBe(200);
    await expect.poll(() => sink.messages.length).toBe(1);
    expect(sink.messages[0]!.envelope.to).toEqual(["alice@example.org"]);
    const row = await is.seraph.store.db
      .selectFrom("validation_sessions")
      .select("address")
      .where("sid", "=", req.body.sid as string)
      .executeTakeFirst();
    expect(row?.address).toBe("alice@example.org");

    sink.clear();
    const inv = await invite({ address: "Bob@ＥＸＡＭＰＬＥ.net" });
    expect(inv.status).toBe(200);
    await expect.poll(() => sink.messages.length).toBe(1);
    expect(sink.messages[0]!.envelope.to).toEqual(["bob@example.net"]);
  });
});

describe("the Subject of an invite", () => {
  it("shows an encoded-word in a display name literally, never decoded by the reader's client", async () => {
    const name = "=?UTF-8?B?QmFuaw==?="; // "Bank"; display names are cut at 20 characters
    expect((await invite({ sender_display_name: name })).status).toBe(200);
    await expect.poll(() => sink.messages.length).toBe(1);
    const subject = sink.messages[0]!.parsed.subject ?? "";
    expect(subject).toContain(name);
    expect(subject).not.toMatch(/^Bank/);
  });
});

describe("a NUL character in a parameter", () => {
  // PostgreSQL text cannot hold U+0000 (a lookup with one was a 500 there): refused on both backends alike.
  const refused = { errcode: "M_INVALID_PARAM", error: "NUL characters are not allowed" };

  it("is refused with 400 in a query, a path or a body, and the server keeps serving", async () => {
    const token = "nul-lookup-token";
    await is.seraph.store.repos.accounts.createToken("@nul:hs.test", sha256Hex(token), Date.now(), null);
    const auth = { authorization: `Bearer ${token}` };
    const { body: details } = await call(`${is.url}${V2}/hash_details`, { headers: auth });
    const answers = [
      await call(`${is.url}${V1}/lookup?medium=email&address=a%00b%40example.org`),
      await call(`${is.url}${V2}/account?access_token=a%00b`),
      await call(`${is.url}${V2}/terms?x=%00`),
      await call(`${is.url}${V2}/pubkey/isvalid?public_key=a%00b`),
      await call(`${is.url}${V1}/bulk_lookup`, { body: { threepids: [["email", "a\u0000b@example.org"]] } }),
      await call(`${is.url}${V2}/lookup`, {
        headers: auth,
        body: { addresses: ["x\u0000y", "z"], algorithm: "sha256", pepper: details.lookup_pepper },
      }),
      await invite({ room_id: "!r\u0000:hs.test" }),
      await invite({ "sender\u0000": "x" }),
      await call(`${is.url}${V1}/store-invite`, {
        rawBody: "medium=email&address=a%40example.org&room_id=%21r%00&sender=%40s%3Ahs.test",
        headers: { "content-type": "application/x-www-form-urlencoded" },
      }),
    ];
    for (const a of answers) expect([a.status, a.body]).toEqual([400, refused]);
    // Text that only looks like one is taken as it is.
    const escaped = await call(`${is.url}${V1}/bulk_lookup`, {
      body: { threepids: [["email", "a\\u0000b@example.org"]] },
    });
    expect([escaped.status, escaped.body]).toEqual([200, { threepids: [] }]);
    expect((await call(`${is.url}${V1}/lookup?medium=email&address=a%40example.org`)).status).toBe(200);
  });
});
