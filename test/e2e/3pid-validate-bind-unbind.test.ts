import { createPublicKey, verify } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type MatrixClient } from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeBase64 } from "../../src/crypto/base64.js";
import { signingBytes, signingKeyFromSeed } from "../../src/crypto/ed25519.js";
import { HomeserverClient, signXMatrixRequest } from "../../src/federation/index.js";
import { createStubDns, type FakeHomeserver, startFakeHomeserver } from "../support/fake-homeserver.js";
import { latestSmsCode } from "../support/fake-sms.js";
import { V1, V2 } from "../support/paths.js";
import { call, freePort, startSeraph, type TestSeraph } from "../support/seraph.js";
import { type SmtpSink, startSmtpSink } from "../support/smtp-sink.js";

(logger as unknown as { setLevel(level: string): void }).setLevel("silent");

let sink: SmtpSink;
let hs: FakeHomeserver;
let serverName: string;
let is: TestSeraph;
let dir: string;
const dns = createStubDns({ hosts: { "hs.test": "127.0.0.1" } });

function homeservers() {
  return new HomeserverClient({
    dns,
    ipAllowlist: ["127.0.0.1/32"],
    verifyCertificates: false,
    requestTimeoutMs: 2000,
  });
}

function seraphConfig() {
  return {
    email: { smtp: { host: sink.host, port: sink.port, tls: "none" } },
    validation: { next_link_allowlist: ["app.example.org"] },
    onbind: { poll_interval_ms: 50, initial_backoff_seconds: 0.05, max_backoff_seconds: 0.2 },
    v1: { enable_bind: true },
    lookup: { rotation_settle_seconds: 0 },
  };
}

beforeAll(async () => {
  sink = await startSmtpSink();
  const port = await freePort();
  serverName = `hs.test:${port}`;
  hs = await startFakeHomeserver({ serverName, port });
  dir = mkdtempSync(join(tmpdir(), "seraph-e2e-"));
  is = await startSeraph(seraphConfig(), { homeservers: homeservers(), dir });
});

afterAll(async () => {
  await is?.close();
  await hs?.close();
  await sink?.close();
});

const mxidOf = (localpart: string) => `@${localpart}:${serverName}`;

/** A matrix-js-sdk client registered with Seraph as `localpart` (through the fake homeserver's OpenID). */
async function registeredClient(localpart: string): Promise<{ client: MatrixClient; token: string }> {
  const client = createClient({ baseUrl: "http://127.0.0.1:1", idBaseUrl: is.url });
  const oidc = `oidc-${localpart}-${Math.random()}`;
  hs.setUserinfo(oidc, mxidOf(localpart));
  const { token } = await client.registerWithIdentityServer({
    access_token: oidc,
    token_type: "Bearer",
    matrix_server_name: serverName,
    expires_in: 3600,
  });
  return { client, token };
}

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

/** Requests an email token with the SDK and returns the sid and the link from the mail. */
async function emailSession(
  client: MatrixClient,
  token: string,
  email: string,
  secret: string,
  nextLink?: string,
) {
  const { sid } = await client.requestEmailToken(email, secret, 1, nextLink, token);
  const linkIn = (m: { parsed: { text?: string | undefined } }) =>
    /https?:\/\/\S+submitToken\?\S+/.exec(m.parsed.text ?? "")?.[0];
  let mail: (typeof sink.messages)[number] | undefined;
  await expect
    .poll(() => {
      mail = sink.messages.find((m) => linkIn(m)?.includes(`sid=${sid}`));
      return mail !== undefined;
    })
    .toBe(true);
  return { sid, link: new URL(linkIn(mail!)!), mail: mail! };
}

async function bind(token: string, sid: string, secret: string, mxid: string) {
  return call(`${is.url}${V2}/3pid/bind`, {
    headers: auth(token),
    body: { sid, client_secret: secret, mxid },
  });
}

async function longTermKey(): Promise<Buffer> {
  const res = await call(`${is.url}${V2}/pubkey/ed25519:0`);
  return decodeBase64(res.body.public_key as string)!;
}

function verifiesWith(obj: Record<string, unknown>, raw: Buffer): boolean {
  const sig = (obj.signatures as Record<string, Record<string, string>>)["is.test"]?.["ed25519:0"];
  const key = createPublicKey({
    key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]),
    format: "der",
    type: "spki",
  });
  return sig !== undefined && verify(null, signingBytes(obj), key, decodeBase64(sig)!);
}

describe("email: validate by link, bind, look up, unbind (matrix-js-sdk)", () => {
  it("runs the whole lifecycle", async () => {
    const { client, token } = await registeredClient("alice");
    const email = "Alice.Lifecycle@Example.org";
    const secret = "secret-alice-1";
    const { sid, link, mail } = await emailSession(client, token, email, secret);
    expect(mail.envelope.to).toEqual(["alice.lifecycle@example.org"]);

    const notYet = await call(`${is.url}${V2}/3pid/getValidated3pid?sid=${sid}&client_secret=${secret}`, {
      headers: auth(token),
    });
    expect(notYet.status).toBe(400);
    expect(notYet.body.errcode).toBe("M_SESSION_NOT_VALIDATED");

    const page = await fetch(link, { redirect: "manual" });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(await page.text()).toContain("verified");

    const validated = await call(`${is.url}${V2}/3pid/getValidated3pid?sid=${sid}&client_secret=${secret}`, {
      headers: auth(token),
    });
    expect(validated.body).toMatchObject({ medium: "email", address: "alice.lifecycle@example.org" });
    expect(validated.body.validated_at).toEqual(expect.any(Number));

    const bound = await bind(token, sid, secret, mxidOf("alice"));
    expect(bound.status).toBe(200);
    expect(bound.body).toMatchObject({
      medium: "email",
      address: "alice.lifecycle@example.org",
      mxid: mxidOf("alice"),
    });
    for (const k of ["not_before", "not_after", "ts"]) expect(bound.body[k]).toEqual(expect.any(Number));
    expect(verifiesWith(bound.body, await longTermKey())).toBe(true);

    const details = await client.getIdentityHashDetails(token);
    expect(details.algorithms).toEqual(expect.arrayContaining(["sha256", "none"]));
    const hashed = await client.identityHashedLookup([["alice.lifecycle@example.org", "email"]], token);
    expect(hashed).toEqual([{ address: "alice.lifecycle@example.org", mxid: mxidOf("alice") }]);
    expect(await client.lookupThreePid("email", "alice.lifecycle@example.org", token)).toMatchObject({
      mxid: mxidOf("alice"),
    });
    const bulk = await client.bulkLookupThreePids(
      [
        ["email", "alice.lifecycle@example.org"],
        ["email", "nobody@example.org"],
      ],
      token,
    );
    expect(bulk.threepids).toEqual([["email", "alice.lifecycle@example.org", mxidOf("alice")]]);

    // v1 lookups, which older homeservers use.
    const v1 = await call(`${is.url}${V1}/lookup?medium=email&address=${encodeURIComponent(email)}`);
    expect(v1.body).toMatchObject({ mxid: mxidOf("alice"), address: "alice.lifecycle@example.org" });
    expect(verifiesWith(v1.body, await longTermKey())).toBe(true);
    // v1 lookup answers the association exactly as bind signed it (stored at bind, see the keys CLI test).
    expect(v1.body).toEqual(bound.body);
    const v1bulk = await call(`${is.url}${V1}/bulk_lookup`, {
      body: { threepids: [["email", "alice.lifecycle@example.org"]] },
    });
    expect(v1bulk.body).toEqual({ threepids: [["email", "alice.lifecycle@example.org", mxidOf("alice")]] });

    const unbound = await call(`${is.url}${V2}/3pid/unbind`, {
      body: {
        sid,
        client_secret: secret,
        mxid: mxidOf("alice"),
        threepid: { medium: "email", address: "alice.lifecycle@example.org" },
      },
    });
    expect(unbound.status).toBe(200);
    expect(unbound.body).toEqual({});
    expect(await client.identityHashedLookup([["alice.lifecycle@example.org", "email"]], token)).toEqual([]);
    expect(
      (await call(`${is.url}${V1}/lookup?medium=email&address=${encodeURIComponent(email)}`)).body,
    ).toEqual({});
    // Unbinding again is fine.
    const again = await call(`${is.url}${V2}/3pid/unbind`, {
      body: {
        sid,
        client_secret: secret,
        mxid: mxidOf("alice"),
        threepid: { medium: "email", address: "alice.lifecycle@example.org" },
      },
    });
    expect(again.status).toBe(200);
  });

  it("sends again only for a greater send_attempt, with the same sid", async () => {
    const { client, token } = await registeredClient("sendattempt");
    sink.clear();
    const first = await client.requestEmailToken(
      "attempts@example.org",
      "secret-attempts",
      1,
      undefined,
      token,
    );
    await sink.waitForMessages(1);
    const same = await client.requestEmailToken(
      "attempts@example.org",
      "secret-attempts",
      1,
      undefined,
      token,
    );
    expect(same.sid).toBe(first.sid);
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.messages).toHaveLength(1);
    const next = await client.requestEmailToken(
      "attempts@example.org",
      "secret-attempts",
      2,
      undefined,
      token,
    );
    expect(next.sid).toBe(first.sid);
    const mails = await sink.waitForMessages(2);
    const tokenOf = (text: string | undefined) => /token=([A-Za-z0-9]+)/.exec(text ?? "")?.[1];
    expect(tokenOf(mails[1]!.parsed.text)).toBe(tokenOf(mails[0]!.parsed.text));
  });

  it("redirects to an allowed next_link only", async () => {
    const { client, token } = await registeredClient("nextlink");
    const allowed = await emailSession(
      client,
      token,
      "next1@example.org",
      "s1",
      "https://app.example.org/#/done",
    );
    const res = await fetch(allowed.link, { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("https://app.example.org/#/done");

    const denied = await emailSession(client, token, "next2@example.org", "s2", "https://evil.example/phish");
    const page = await fetch(denied.link, { redirect: "manual" });
    expect(page.status).toBe(200);
    expect(page.headers.get("location")).toBeNull();

    const js = await emailSession(client, token, "next3@example.org", "s3", "javascript:alert(1)");
    expect((await fetch(js.link, { redirect: "manual" })).status).toBe(200);
  });
});

describe("phone numbers (matrix-js-sdk)", () => {
  it("validates with the SMS code, binds and looks up", async () => {
    const { client, token } = await registeredClient("phone");
    const { sid, msisdn } = await client.requestMsisdnToken(
      "GB",
      "07911 123456",
      "secret-phone",
      1,
      undefined,
      token,
    );
    expect(msisdn).toBe("447911123456");
    const code = await latestSmsCode(join(dir, "outbox"), "+447911123456");
    expect(code).toMatch(/^\d{6}$/);
    await expect(client.submitMsisdnToken(sid, "secret-phone", "000000", token)).rejects.toMatchObject({
      errcode: "M_TOKEN_INCORRECT",
    });
    expect(await client.submitMsisdnToken(sid, "secret-phone", code!, token)).toEqual({ success: true });
    expect((await bind(token, sid, "secret-phone", mxidOf("phone"))).status).toBe(200);
    expect(await client.lookupThreePid("msisdn", "447911123456", token)).toMatchObject({
      mxid: mxidOf("phone"),
    });
  });

  it("refuses invalid numbers", async () => {
    const { token } = await registeredClient("badphone");
    const res = await call(`${is.url}${V2}/validate/msisdn/requestToken`, {
      headers: auth(token),
      body: { client_secret: "s", country: "GB", phone_number: "12", send_attempt: 1 },
    });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe("M_INVALID_ADDRESS");
  });
});

describe("third-party invites delivered on bind", () => {
  it("stores an invite, and on bind the homeserver receives onbind with a verifiable signed block", async () => {
    const { token: bobToken } = await registeredClient("bob");
    const invited = await call(`${is.url}${V2}/store-invite`, {
      headers: auth(bobToken),
      body: {
        medium: "email",
        address: "carol@example.org",
        room_id: "!room:hs.test",
        sender: mxidOf("bob"),
      },
    });
    expect(invited.status).toBe(200);
    const inviteToken = invited.body.token as string;

    const { client, token } = await registeredClient("carol");
    const before = hs.onbind.delivered.length;
    const { sid, link } = await emailSession(client, token, "carol@example.org", "secret-carol");
    await fetch(link);
    expect((await bind(token, sid, "secret-carol", mxidOf("carol"))).status).toBe(200);

    await expect.poll(() => hs.onbind.delivered.length, { timeout: 5000 }).toBe(before + 1);
    const body = hs.onbind.delivered.at(-1) as Record<string, unknown>;
    expect(body).toMatchObject({ medium: "email", address: "carol@example.org", mxid: mxidOf("carol") });
    const [inv] = body.invites as Array<Record<string, unknown>>;
    expect(inv).toMatchObject({ room_id: "!room:hs.test", sender: mxidOf("bob"), mxid: mxidOf("carol") });
    const signed = inv!.signed as Record<string, unknown>;
    expect(signed).toMatchObject({ mxid: mxidOf("carol"), token: inviteToken });
    expect(verifiesWith(signed, await longTermKey())).toBe(true);

    const left = await is.seraph.store.db
      .selectFrom("invites")
      .select("token")
      .where("token", "=", inviteToken)
      .execute();
    expect(left).toEqual([]);
  });

  it("retries while the homeserver fails, and survives a Seraph restart", async () => {
    const { token: bobToken } = await registeredClient("bob2");
    await call(`${is.url}${V2}/store-invite`, {
      headers: auth(bobToken),
      body: { medium: "email", address: "dave@example.org", room_id: "!r2:hs.test", sender: mxidOf("bob2") },
    });
    const { client, token } = await registeredClient("dave");
    const { sid, link } = await emailSession(client, token, "dave@example.org", "secret-dave");
    await fetch(link);

    hs.onbind.failNext(1000, 503);
    const delivered = hs.onbind.delivered.length;
    const attempts = hs.onbind.bodies.length;
    expect((await bind(token, sid, "secret-dave", mxidOf("dave"))).status).toBe(200);
    await expect.poll(() => hs.onbind.bodies.length, { timeout: 5000 }).toBeGreaterThanOrEqual(attempts + 2);

    await is.close();
    hs.onbind.failNext(0);
    is = await startSeraph(seraphConfig(), { homeservers: homeservers(), dir });
    await expect.poll(() => hs.onbind.delivered.length, { timeout: 5000 }).toBe(delivered + 1);
    expect((hs.onbind.delivered.at(-1) as { mxid: string }).mxid).toBe(mxidOf("dave"));
  });
});

describe("unbind signed by the homeserver (X-Matrix)", () => {
  async function bound(localpart: string, email: string) {
    const { client, token } = await registeredClient(localpart);
    const { sid, link } = await emailSession(client, token, email, `secret-${localpart}`);
    await fetch(link);
    await bind(token, sid, `secret-${localpart}`, mxidOf(localpart));
    return { client, token };
  }

  function signedUnbind(body: Record<string, unknown>, opts: { origin?: string; seed?: Buffer } = {}) {
    const uri = `${V2}/3pid/unbind`;
    const key = signingKeyFromSeed(opts.seed ?? hs.signingKey.seed, hs.signingKey.keyId);
    const authorization = signXMatrixRequest({
      method: "POST",
      uri,
      body,
      origin: opts.origin ?? serverName,
      destination: "is.test",
      key,
    });
    return call(`${is.url}${uri}`, { headers: { authorization }, body });
  }

  it("accepts the mxid's homeserver and refuses forgeries and other origins", async () => {
    const { client, token } = await bound("erin", "erin@example.org");
    const body = { mxid: mxidOf("erin"), threepid: { medium: "email", address: "erin@example.org" } };

    const forged = await signedUnbind(body, { seed: Buffer.alloc(32, 9) });
    expect(forged.status).toBe(403);
    expect(forged.body.errcode).toBe("M_FORBIDDEN");

    const otherBody = { mxid: "@erin:elsewhere.test", threepid: body.threepid };
    const wrongOrigin = await signedUnbind(otherBody);
    expect(wrongOrigin.status).toBe(403);

    const unsigned = await call(`${is.url}${V2}/3pid/unbind`, { body });
    expect(unsigned.status).toBe(403);

    expect(await client.lookupThreePid("email", "erin@example.org", token)).toMatchObject({
      mxid: mxidOf("erin"),
    });
    const ok = await signedUnbind(body);
    expect(ok.body).toEqual({});
    expect(ok.status).toBe(200);
    expect(await client.lookupThreePid("email", "erin@example.org", token)).toEqual({});
  });
});

describe("bad input", () => {
  it("rejects malformed client_secret, addresses and types", async () => {
    const { token } = await registeredClient("mallory");
    const req = (body: Record<string, unknown>) =>
      call(`${is.url}${V2}/validate/email/requestToken`, { headers: auth(token), body });
    expect((await req({ client_secret: "bad secret!", email: "a@b.c", send_attempt: 1 })).body.errcode).toBe(
      "M_INVALID_PARAM",
    );
    expect(
      (await req({ client_secret: "x".repeat(256), email: "a@b.c", send_attempt: 1 })).body.errcode,
    ).toBe("M_INVALID_PARAM");
    expect((await req({ client_secret: "ok", email: "a@b@c", send_attempt: 1 })).body.errcode).toBe(
      "M_INVALID_EMAIL",
    );
    expect((await req({ client_secret: "ok", email: "a@b.c", send_attempt: "one" })).body.errcode).toBe(
      "M_INVALID_PARAM",
    );
    expect((await req({ client_secret: "ok", email: "a@b.c" })).body.errcode).toBe("M_MISSING_PARAMS");
    const unknown = await call(`${is.url}${V2}/validate/email/submitToken`, {
      headers: auth(token),
      body: { sid: "nope", client_secret: "ok", token: "x" },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errcode).toBe("M_INVALID_PARAM");
    const noSession = await call(`${is.url}${V2}/3pid/getValidated3pid?sid=nope&client_secret=ok`, {
      headers: auth(token),
    });
    expect(noSession.status).toBe(404);
    expect(noSession.body.errcode).toBe("M_NO_VALID_SESSION");
    const foreignBind = await bind(token, "nope", "ok", "@someone:else.test");
    expect(foreignBind.status).toBe(403);
  });

  it("closes a session after 5 wrong tokens", async () => {
    const { client, token } = await registeredClient("guesser");
    const { sid, link } = await emailSession(client, token, "guess@example.org", "secret-guess");
    const submit = (t: string) =>
      call(`${is.url}${V2}/validate/email/submitToken`, {
        headers: auth(token),
        body: { sid, client_secret: "secret-guess", token: t },
      });
    for (let i = 0; i < 5; i++) expect((await submit(`wrong${i}`)).body.errcode).toBe("M_TOKEN_INCORRECT");
    const sixth = await submit("wrong6");
    expect(sixth.body.errcode).toBe("M_SESSION_EXPIRED");
    const right = await submit(link.searchParams.get("token")!);
    expect(right.status).toBe(400);
    expect(right.body.errcode).toBe("M_SESSION_EXPIRED");
  });

  it("holds the wrong-token limit and sends one mail under parallel requests", async () => {
    const { token } = await registeredClient("racer");
    sink.clear();
    const request = () =>
      call(`${is.url}${V2}/validate/email/requestToken`, {
        headers: auth(token),
        body: { client_secret: "secret-race", email: "race@example.org", send_attempt: 1 },
      });
    const requests = await Promise.all(Array.from({ length: 8 }, request));
    expect(requests.map((r) => r.status)).toEqual(Array(8).fill(200));
    const sids = new Set(requests.map((r) => r.body.sid));
    expect(sids.size).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.messages.filter((m) => m.envelope.to.includes("race@example.org"))).toHaveLength(1);

    const [sid] = [...sids] as string[];
    const guesses = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        call(`${is.url}${V2}/validate/email/submitToken`, {
          headers: auth(token),
          body: { sid, client_secret: "secret-race", token: `guess${i}` },
        }),
      ),
    );
    const codes = guesses.map((g) => g.body.errcode);
    expect(codes.filter((c) => c === "M_TOKEN_INCORRECT")).toHaveLength(5);
    expect(codes.filter((c) => c === "M_SESSION_EXPIRED")).toHaveLength(35);
  });

  it("refuses lookups that are too large or use a wrong pepper", async () => {
    const { token } = await registeredClient("looker");
    const { lookup_pepper } = (await call(`${is.url}${V2}/hash_details`, { headers: auth(token) })).body as {
      lookup_pepper: string;
    };
    expect(lookup_pepper.length).toBeGreaterThanOrEqual(32);
    const lookup = (body: Record<string, unknown>) =>
      call(`${is.url}${V2}/lookup`, { headers: auth(token), body });
    const big = await lookup({
      algorithm: "sha256",
      pepper: lookup_pepper,
      addresses: Array(10001).fill("x"),
    });
    expect(big.status).toBe(400);
    expect(big.body.errcode).toBe("M_TOO_LARGE");
    const wrong = await lookup({ algorithm: "sha256", pepper: "nope", addresses: [] });
    expect(wrong.status).toBe(400);
    expect(wrong.body).toMatchObject({ errcode: "M_INVALID_PEPPER", lookup_pepper });
    const algo = await lookup({ algorithm: "md5", pepper: lookup_pepper, addresses: [] });
    expect(algo.body.errcode).toBe("M_INVALID_PARAM");
    const unauth = await call(`${is.url}${V2}/lookup`, {
      body: { algorithm: "sha256", pepper: "x", addresses: [] },
    });
    expect(unauth.status).toBe(401);
  });
});

describe("pepper rotation", () => {
  it("rehashes, switches, and accepts the previous pepper during the grace period", async () => {
    const { client, token } = await registeredClient("rotor");
    const { sid, link } = await emailSession(client, token, "rotor@example.org", "secret-rotor");
    await fetch(link);
    await bind(token, sid, "secret-rotor", mxidOf("rotor"));
    const old = (await client.getIdentityHashDetails(token)).lookup_pepper;

    await is.seraph.lookup.rotate();
    while ((await is.seraph.lookup.maintain()) > 0) {
      /* rehash every batch */
    }
    const fresh = (await client.getIdentityHashDetails(token)).lookup_pepper;
    expect(fresh).not.toBe(old);
    expect(await client.identityHashedLookup([["rotor@example.org", "email"]], token)).toEqual([
      { address: "rotor@example.org", mxid: mxidOf("rotor") },
    ]);
    // A client still holding the old pepper gets an answer during the grace period.
    const { createHash } = await import("node:crypto");
    const oldHash = createHash("sha256").update(`rotor@example.org email ${old}`).digest("base64url");
    const res = await call(`${is.url}${V2}/lookup`, {
      headers: auth(token),
      body: { algorithm: "sha256", pepper: old, addresses: [oldHash] },
    });
    expect(res.body).toEqual({ mappings: { [oldHash]: mxidOf("rotor") } });
  });
});
