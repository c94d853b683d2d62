import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type MatrixClient, SERVICE_TYPES } from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HomeserverClient } from "../../src/federation/index.js";
import { createStubDns, type FakeHomeserver, startFakeHomeserver } from "../support/fake-homeserver.js";
import { V2 } from "../support/paths.js";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";

// The SDK logs every request; its loglevel logger has setLevel at run time.
(logger as unknown as { setLevel(level: string): void }).setLevel("silent");

function termsFile(version: string): string {
  const dir = mkdtempSync(join(tmpdir(), "seraph-terms-"));
  const path = join(dir, "terms.yaml");
  writeFileSync(
    path,
    `master_version: "${version}"
docs:
  privacy:
    version: "${version}"
    langs:
      en: { name: "Privacy Policy", url: "https://is.test/privacy/en/${version}.html" }
      fr: { name: "Politique de confidentialité", url: "https://is.test/privacy/fr/${version}.html" }
  terms:
    version: "1.0"
    langs:
      en: { name: "Terms of Service", url: "https://is.test/tos/en/1.0.html" }
      fr: { name: "Conditions d'utilisation", url: "https://is.test/tos/fr/1.0.html" }
`,
  );
  return path;
}

let hs: FakeHomeserver;
let serverName: string;
const dns = createStubDns({ hosts: { "hs.test": "127.0.0.1" } });

function homeserverClient() {
  return new HomeserverClient({
    dns,
    ipAllowlist: ["127.0.0.1/32"],
    verifyCertificates: false,
    requestTimeoutMs: 1500,
  });
}

beforeAll(async () => {
  hs = await startFakeHomeserver({ serverName: "hs.test" });
  serverName = `hs.test:${hs.port}`;
});
afterAll(async () => {
  await hs?.close();
});

function clientFor(is: TestSeraph): MatrixClient {
  return createClient({ baseUrl: "http://127.0.0.1:1", idBaseUrl: is.url });
}

async function openIdToken(localpart: string) {
  const token = `oidc-${localpart}-${Math.random().toString(36).slice(2)}`;
  hs.setUserinfo(token, `@${localpart}:${serverName}`);
  return { access_token: token, token_type: "Bearer", matrix_server_name: serverName, expires_in: 3600 };
}

describe("accounts without terms", () => {
  let is: TestSeraph;
  beforeAll(async () => {
    is = await startSeraph({}, { homeservers: homeserverClient() });
  });
  afterAll(async () => is?.close());

  it("registers through the homeserver, answers /account and logs out (matrix-js-sdk)", async () => {
    const client = clientFor(is);
    const registered = await client.registerWithIdentityServer(await openIdToken("alice"));
    expect(registered.token).toBeTruthy();
    expect(registered.access_token).toBe(registered.token);
    expect(await client.getIdentityAccount(registered.token)).toEqual({ user_id: `@alice:${serverName}` });
    const terms = await client.getTerms(SERVICE_TYPES.IS, is.url);
    expect(terms).toEqual({ policies: {} });

    // Stored only as a hash.
    const rows = await is.seraph.store.db.selectFrom("access_tokens").select("token_hash").execute();
    expect(rows.map((r) => r.token_hash)).not.toContain(registered.token);

    // A v2 store-invite with the token works; a foreign sender is refused.
    const ok = await call(`${is.url}${V2}/store-invite`, {
      headers: { authorization: `Bearer ${registered.token}` },
      body: {
        medium: "email",
        address: "friend@example.org",
        room_id: "!r:hs.test",
        sender: `@alice:${serverName}`,
      },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.public_keys).toHaveLength(2);
    const foreign = await call(`${is.url}${V2}/store-invite`, {
      headers: { authorization: `Bearer ${registered.token}` },
      body: {
        medium: "email",
        address: "friend@example.org",
        room_id: "!r:hs.test",
        sender: "@mallory:hs.test",
      },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.body.errcode).toBe("M_UNAUTHORIZED");

    // Query-string tokens are accepted while auth.allow_query_token is true.
    const viaQuery = await call(`${is.url}${V2}/account?access_token=${registered.token}`);
    expect(viaQuery.body).toEqual({ user_id: `@alice:${serverName}` });

    const logout = await call(`${is.url}${V2}/account/logout`, {
      method: "POST",
      headers: { authorization: `Bearer ${registered.token}` },
    });
    expect(logout.status).toBe(200);
    expect(logout.body).toEqual({});
    await expect(client.getIdentityAccount(registered.token)).rejects.toMatchObject({
      errcode: "M_UNAUTHORIZED",
    });
  });

  it("answers 401 M_UNAUTHORIZED for a missing or unknown token", async () => {
    const none = await call(`${is.url}${V2}/account`);
    expect(none.status).toBe(401);
    expect(none.body.errcode).toBe("M_UNAUTHORIZED");
    const unknown = await call(`${is.url}${V2}/account`, { headers: { authorization: "Bearer nope" } });
    expect(unknown.status).toBe(401);
  });

  it("refuses an OpenID token the homeserver does not know, or a sub on another server", async () => {
    const unknown = await call(`${is.url}${V2}/account/register`, {
      body: {
        access_token: "unknown",
        token_type: "Bearer",
        matrix_server_name: serverName,
        expires_in: 3600,
      },
    });
    expect(unknown.status).toBe(401);
    expect(unknown.body.errcode).toBe("M_UNAUTHORIZED");

    hs.setUserinfo("other-server", "@alice:evil.example");
    const other = await call(`${is.url}${V2}/account/register`, {
      body: {
        access_token: "other-server",
        token_type: "Bearer",
        matrix_server_name: serverName,
        expires_in: 3600,
      },
    });
    expect(other.status).toBe(401);
    expect(other.body.errcode).toBe("M_UNAUTHORIZED");
  });

  it("registers with only access_token and matrix_server_name (as sydent does)", async () => {
    const { access_token } = await openIdToken("frank");
    const res = await call(`${is.url}${V2}/account/register`, {
      body: { access_token, matrix_server_name: serverName },
    });
    expect(res.status).toBe(200);
    expect(typeof res.body.token).toBe("string");
    const account = await call(`${is.url}${V2}/account`, {
      headers: { authorization: `Bearer ${res.body.token as string}` },
    });
    expect(account.body).toEqual({ user_id: `@frank:${serverName}` });

    const withType = await openIdToken("grace");
    const typed = await call(`${is.url}${V2}/account/register`, {
      body: { access_token: withType.access_token, token_type: "Bearer", matrix_server_name: serverName },
    });
    expect(typed.status).toBe(200);
  });

  it("validates the register body", async () => {
    const missing = await call(`${is.url}${V2}/account/register`, { body: { access_token: "x" } });
    expect(missing.status).toBe(400);
    expect(missing.body.errcode).toBe("M_MISSING_PARAMS");
    const noToken = await call(`${is.url}${V2}/account/register`, {
      body: { matrix_server_name: serverName },
    });
    expect(noToken.body.errcode).toBe("M_MISSING_PARAMS");
    const badExpiry = await call(`${is.url}${V2}/account/register`, {
      body: { access_token: "x", matrix_server_name: serverName, expires_in: "soon" },
    });
    expect(badExpiry.status).toBe(400);
    expect(badExpiry.body.errcode).toBe("M_INVALID_PARAM");
    const badType = await call(`${is.url}${V2}/account/register`, {
      body: { access_token: "x", token_type: "Mac", matrix_server_name: serverName, expires_in: 1 },
    });
    expect(badType.body.errcode).toBe("M_INVALID_PARAM");
    const badName = await call(`${is.url}${V2}/account/register`, {
      body: { access_token: "x", token_type: "Bearer", matrix_server_name: "bad name/..", expires_in: 1 },
    });
    expect(badName.status).toBe(400);
    expect(badName.body.errcode).toBe("M_INVALID_PARAM");
  });
});

describe("terms of service", () => {
  let is: TestSeraph;
  const dir = mkdtempSync(join(tmpdir(), "seraph-terms-is-"));
  beforeAll(async () => {
    is = await startSeraph({ terms: { path: termsFile("1.0") } }, { homeservers: homeserverClient(), dir });
  });
  afterAll(async () => is?.close());

  it("serves the policies and gates until every policy is accepted, in any language mix", async () => {
    const client = clientFor(is);
    const terms = (await client.getTerms(SERVICE_TYPES.IS, is.url)) as {
      policies: Record<string, Record<string, unknown>>;
    };
    expect(terms.policies.privacy).toEqual({
      version: "1.0",
      en: { name: "Privacy Policy", url: "https://is.test/privacy/en/1.0.html" },
      fr: { name: "Politique de confidentialité", url: "https://is.test/privacy/fr/1.0.html" },
    });

    const { token } = await client.registerWithIdentityServer(await openIdToken("bob"));
    // GET /account answers 403 M_TERMS_NOT_SIGNED until the terms are accepted (sydent; Element starts its
    // terms dialog from this answer). GET /terms stays open; logout and POST /terms are tested below.
    await expect(client.getIdentityAccount(token)).rejects.toMatchObject({
      errcode: "M_TERMS_NOT_SIGNED",
      httpStatus: 403,
    });
    const invite = () =>
      call(`${is.url}${V2}/store-invite`, {
        headers: { authorization: `Bearer ${token}` },
        body: {
          medium: "email",
          address: "x@example.org",
          room_id: "!r:hs.test",
          sender: `@bob:${serverName}`,
        },
      });
    const gated = await invite();
    expect(gated.status).toBe(403);
    expect(gated.body.errcode).toBe("M_TERMS_NOT_SIGNED");

    await client.agreeToTerms(SERVICE_TYPES.IS, is.url, token, ["https://is.test/privacy/fr/1.0.html"]);
    expect((await invite()).body.errcode).toBe("M_TERMS_NOT_SIGNED");
    await expect(client.getIdentityAccount(token)).rejects.toMatchObject({ errcode: "M_TERMS_NOT_SIGNED" });
    await client.agreeToTerms(SERVICE_TYPES.IS, is.url, token, ["https://is.test/tos/en/1.0.html"]);
    expect((await invite()).status).toBe(200);
    expect(await client.getIdentityAccount(token)).toEqual({ user_id: `@bob:${serverName}` });
  });

  it("lets a user who has not accepted the terms log out", async () => {
    const client = clientFor(is);
    const { token } = await client.registerWithIdentityServer(await openIdToken("erin"));
    const logout = await call(`${is.url}${V2}/account/logout`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    expect(logout.status).toBe(200);
    const after = await call(`${is.url}${V2}/account`, { headers: { authorization: `Bearer ${token}` } });
    expect(after.status).toBe(401);
  });

  it("accepts everything in one call too", async () => {
    const client = clientFor(is);
    const { token } = await client.registerWithIdentityServer(await openIdToken("carol"));
    await client.agreeToTerms(SERVICE_TYPES.IS, is.url, token, [
      "https://is.test/privacy/en/1.0.html",
      "https://is.test/tos/fr/1.0.html",
      "https://unrelated.example/ignored",
    ]);
    const res = await call(`${is.url}${V2}/sign-ed25519`, {
      headers: { authorization: `Bearer ${token}` },
      body: { mxid: "@x:y", token: "nope", private_key: "A".repeat(43) },
    });
    expect(res.status).toBe(404);
  });

  it("a new policy version gates again", async () => {
    const client = clientFor(is);
    const { token } = await client.registerWithIdentityServer(await openIdToken("dave"));
    await client.agreeToTerms(SERVICE_TYPES.IS, is.url, token, [
      "https://is.test/privacy/en/1.0.html",
      "https://is.test/tos/en/1.0.html",
    ]);
    await is.close();
    is = await startSeraph({ terms: { path: termsFile("2.0") } }, { homeservers: homeserverClient(), dir });
    const res = await call(`${is.url}${V2}/sign-ed25519`, {
      headers: { authorization: `Bearer ${token}` },
      body: { mxid: "@x:y", token: "nope", private_key: "A".repeat(43) },
    });
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe("M_TERMS_NOT_SIGNED");
    await client.agreeToTerms(SERVICE_TYPES.IS, is.url, token, ["https://is.test/privacy/fr/2.0.html"]);
    const after = await call(`${is.url}${V2}/sign-ed25519`, {
      headers: { authorization: `Bearer ${token}` },
      body: { mxid: "@x:y", token: "nope", private_key: "A".repeat(43) },
    });
    expect(after.status).toBe(404);
  });
});
