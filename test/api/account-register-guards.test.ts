import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HomeserverClient } from "../../src/federation/index.js";
import { createStubDns, type FakeHomeserver, startFakeHomeserver } from "../support/fake-homeserver.js";
import { V1, V2 } from "../support/paths.js";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";

const register = (is: TestSeraph, matrix_server_name: string, access_token = "tok", headers = {}) =>
  call(`${is.url}${V2}/account/register`, {
    headers,
    body: { access_token, token_type: "Bearer", matrix_server_name, expires_in: 3600 },
  });

describe("registration cannot be turned against private addresses (default guard)", () => {
  let hs: FakeHomeserver;
  let is: TestSeraph;
  const dns = createStubDns();

  beforeAll(async () => {
    hs = await startFakeHomeserver({ serverName: "hs.test", userinfo: { tok: "@eve:hs.test" } });
    dns.setHost("localhost", "127.0.0.1");
    dns.setHost("private.test", ["10.1.2.3", "127.0.0.1"]);
    // The default guard refuses loopback, so this client can reach nothing on this machine.
    is = await startSeraph(
      {},
      {
        homeservers: new HomeserverClient({
          dns,
          verifyCertificates: false,
          wellKnownPort: hs.port,
          connectTimeoutMs: 500,
          requestTimeoutMs: 1000,
        }),
      },
    );
  });
  afterAll(async () => {
    await is?.close();
    await hs?.close();
  });

  it.each(["127.0.0.1", "[::1]", "10.0.0.1:80", "localhost", "private.test", `127.0.0.1:${0}`])(
    "refuses %s without connecting",
    async (name) => {
      const target = name === "127.0.0.1:0" ? `127.0.0.1:${hs.port}` : name;
      hs.clearLogs();
      const res = await register(is, target);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.body.errcode).toMatch(/^M_/);
      expect(typeof res.body.error).toBe("string");
      expect(hs.connections).toHaveLength(0);
    },
  );

  it("refuses a user ID server name that is not a server name", async () => {
    for (const name of ["evil.test/path", "a b", "user@evil.test", "evil.test:99999", ""]) {
      const res = await register(is, name);
      expect(res.status, name).toBe(400);
    }
  });
});

describe("registration against a misbehaving homeserver", () => {
  let hs: FakeHomeserver;
  let is: TestSeraph;
  const dns = createStubDns({ hosts: { "hs.test": "127.0.0.1" } });

  beforeAll(async () => {
    hs = await startFakeHomeserver({ serverName: "hs.test" });
    is = await startSeraph(
      { accounts: { homeserver_allowlist: [`hs.test:${hs.port}`] }, v1: { enabled: false } },
      {
        homeservers: new HomeserverClient({
          dns,
          ipAllowlist: ["127.0.0.1/32"],
          verifyCertificates: false,
          connectTimeoutMs: 500,
          requestTimeoutMs: 800,
        }),
      },
    );
  });
  afterAll(async () => {
    await is?.close();
    await hs?.close();
  });

  it("refuses an oversized userinfo body", async () => {
    hs.setUserinfoBehaviour({ type: "oversized", bytes: 1024 * 1024 });
    const res = await register(is, `hs.test:${hs.port}`);
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe("M_UNAUTHORIZED");
  });

  it("gives up on a userinfo that never answers", async () => {
    hs.setUserinfoBehaviour({ type: "hang" });
    const started = Date.now();
    const res = await register(is, `hs.test:${hs.port}`);
    expect(Date.now() - started).toBeLessThan(5000);
    // The same answer as for an unknown or private name: no detail of what failed.
    expect(res.status).toBe(401);
    expect(res.body.errcode).toBe("M_UNAUTHORIZED");
    expect(res.text).not.toMatch(/at .*\.ts|timeout|ETIMEDOUT/i);
    hs.setUserinfoBehaviour({ type: "tokens" });
  });

  it("refuses homeservers that are not on the allowlist before contacting them", async () => {
    hs.clearLogs();
    const res = await register(is, `hs.test:${hs.port + 1}`);
    expect(res.status).toBe(403);
    expect(res.body.errcode).toBe("M_UNAUTHORIZED");
    expect(hs.connections).toHaveLength(0);
  });
});

describe("rate limits, proxies and switches", () => {
  let is: TestSeraph;
  beforeAll(async () => {
    is = await startSeraph({
      rate_limit: { enabled: true, register_per_minute: 2, store_invite_per_minute: 100 },
      http: { trusted_proxies: ["127.0.0.1"] },
      v1: { enabled: false },
      federation: { connect_timeout_ms: 200, request_timeout_ms: 200 },
    });
  });
  afterAll(async () => is?.close());

  it("answers 429 M_LIMIT_EXCEEDED with retry_after_ms and Retry-After, per client IP", async () => {
    const fromA = { "x-forwarded-for": "203.0.113.7" };
    await register(is, "127.0.0.1", "t", fromA);
    await register(is, "127.0.0.1", "t", fromA);
    const limited = await register(is, "127.0.0.1", "t", fromA);
    expect(limited.status).toBe(429);
    expect(limited.body.errcode).toBe("M_LIMIT_EXCEEDED");
    expect(limited.body.retry_after_ms).toBeGreaterThan(0);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    // Another client (per the trusted proxy's X-Forwarded-For) is not limited.
    const fromB = await register(is, "127.0.0.1", "t", { "x-forwarded-for": "203.0.113.8" });
    expect(fromB.status).not.toBe(429);
  });

  it("turns the whole v1 API off with v1.enabled: false", async () => {
    for (const path of ["", "/pubkey/ed25519:0", "/store-invite"]) {
      const res = await call(`${is.url}${V1}${path}`);
      expect(res.status, path).toBe(404);
    }
    expect((await call(`${is.url}${V2}/pubkey/ed25519:0`)).status).toBe(200);
  });
});

describe("untrusted X-Forwarded-For", () => {
  let is: TestSeraph;
  beforeAll(async () => {
    is = await startSeraph({ rate_limit: { enabled: true, register_per_minute: 1 } });
  });
  afterAll(async () => is?.close());

  it("is ignored when no proxy is trusted", async () => {
    await register(is, "127.0.0.1", "t", { "x-forwarded-for": "198.51.100.1" });
    const second = await register(is, "127.0.0.1", "t", { "x-forwarded-for": "198.51.100.2" });
    expect(second.status).toBe(429);
  });
});
