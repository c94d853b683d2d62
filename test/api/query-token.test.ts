import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HomeserverClient } from "../../src/federation/index.js";
import { createStubDns, type FakeHomeserver, startFakeHomeserver } from "../support/fake-homeserver.js";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";

// auth.allow_query_token: true | false | hash_details_only. Synapse sends its token for GET hash_details
// only as ?access_token= (synapse/handlers/identity.py), so `hash_details_only` keeps Synapse working while
// every other route wants the Authorization header.

const V2 = "/_matrix/identity/v2";
let hs: FakeHomeserver;
let serverName: string;
const dns = createStubDns({ hosts: { "hs.test": "127.0.0.1" } });

beforeAll(async () => {
  hs = await startFakeHomeserver({ serverName: "hs.test" });
  serverName = `hs.test:${hs.port}`;
});
afterAll(async () => {
  await hs?.close();
});

async function withSeraph(
  allow: boolean | "hash_details_only",
  run: (is: TestSeraph, token: string) => Promise<void>,
) {
  const is = await startSeraph(
    { auth: { allow_query_token: allow } },
    {
      homeservers: new HomeserverClient({
        dns,
        ipAllowlist: ["127.0.0.1/32"],
        verifyCertificates: false,
        requestTimeoutMs: 1500,
      }),
    },
  );
  try {
    const oidc = `oidc-${Math.random().toString(36).slice(2)}`;
    hs.setUserinfo(oidc, `@q:${serverName}`);
    const reg = await call(`${is.url}${V2}/account/register`, {
      body: { access_token: oidc, matrix_server_name: serverName },
    });
    expect(reg.status).toBe(200);
    await run(is, reg.body.token as string);
  } finally {
    await is.close();
  }
}

const lookupBody = { addresses: [], algorithm: "sha256", pepper: "x" };

describe("auth.allow_query_token", () => {
  it("hash_details_only: the query token works on hash_details and nowhere else", async () => {
    await withSeraph("hash_details_only", async (is, token) => {
      const details = await call(`${is.url}${V2}/hash_details?access_token=${token}`);
      expect(details.status).toBe(200);
      expect(details.body.algorithms).toContain("sha256");
      const account = await call(`${is.url}${V2}/account?access_token=${token}`);
      expect(account.status).toBe(401);
      expect(account.body.errcode).toBe("M_UNAUTHORIZED");
      const lookup = await call(`${is.url}${V2}/lookup?access_token=${token}`, { body: lookupBody });
      expect(lookup.status).toBe(401);
      // The header still works everywhere.
      const header = await call(`${is.url}${V2}/account`, { headers: { authorization: `Bearer ${token}` } });
      expect(header.status).toBe(200);
    });
  });

  it("false: no query token anywhere, hash_details included", async () => {
    await withSeraph(false, async (is, token) => {
      expect((await call(`${is.url}${V2}/hash_details?access_token=${token}`)).status).toBe(401);
      expect((await call(`${is.url}${V2}/account?access_token=${token}`)).status).toBe(401);
      const header = await call(`${is.url}${V2}/hash_details`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(header.status).toBe(200);
    });
  });

  it("true (default): query tokens everywhere", async () => {
    await withSeraph(true, async (is, token) => {
      expect((await call(`${is.url}${V2}/hash_details?access_token=${token}`)).status).toBe(200);
      expect((await call(`${is.url}${V2}/account?access_token=${token}`)).status).toBe(200);
    });
  });
});
