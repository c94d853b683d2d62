/**
 * HomeserverClient against real loopback servers (test/support/fake-homeserver.ts) with a stub DNS.
 * `hs` listens on 127.0.0.1 (allowed only when a test allowlists 127.0.0.1/32); `priv` listens on 127.0.0.2,
 * which is never allowlisted, so its connection log proves that forbidden targets were not contacted.
 */
import { inspect } from "node:util";
import { buildConnector } from "undici";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createStubDns,
  type FakeHomeserver,
  KEY_PATH,
  type StubDns,
  startFakeHomeserver,
  USERINFO_PATH,
  WELL_KNOWN_PATH,
} from "../../test/support/fake-homeserver.js";
import { HomeserverClient, type HomeserverClientOptions } from "./client.js";
import { FederationError } from "./errors.js";
import { BLOCKED_CODE, guardConnector } from "./http.js";
import { IpGuard } from "./ip-guard.js";

let hs: FakeHomeserver;
let priv: FakeHomeserver;
const clients: HomeserverClient[] = [];

beforeAll(async () => {
  [hs, priv] = await Promise.all([
    startFakeHomeserver({ serverName: "hs.test" }),
    startFakeHomeserver({ serverName: "priv.test", host: "127.0.0.2" }),
  ]);
});

afterAll(async () => {
  await Promise.all([hs?.close(), priv?.close()]);
});

beforeEach(() => {
  hs.clearLogs();
  priv.clearLogs();
  hs.setUserinfoBehaviour({ type: "tokens" });
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

interface Logged {
  level: string;
  obj: object;
  msg: string;
}

function makeClient(options: HomeserverClientOptions = {}): {
  client: HomeserverClient;
  dns: StubDns;
  logs: Logged[];
} {
  const dns = createStubDns({
    hosts: {
      "hs.test": "127.0.0.1",
      "deleg.test": "127.0.0.1",
      "srv.test": "127.0.0.1",
      "target.test": "127.0.0.1",
      "wrong.test": "127.0.0.1",
      "evil.test": "127.0.0.1",
      "redir.test": "127.0.0.1",
      localhost: "127.0.0.1",
      "private.test": "127.0.0.1",
      "internal.test": "127.0.0.2",
      "mixed.test": ["192.168.1.1", "10.0.0.7", "127.0.0.1"],
    },
  });
  const logs: Logged[] = [];
  const client = new HomeserverClient({
    verifyCertificates: false,
    dns,
    wellKnownPort: hs.port,
    connectTimeoutMs: 2000,
    requestTimeoutMs: 3000,
    logger: {
      info: () => {},
      error: () => {},
      warn: (obj, msg) => logs.push({ level: "warn", obj, msg: msg ?? "" }),
      debug: (obj, msg) => logs.push({ level: "debug", obj, msg: msg ?? "" }),
    },
    ...options,
  });
  clients.push(client);
  return { client, dns, logs };
}

const allow = { ipAllowlist: ["127.0.0.1/32"] };

async function failure(p: Promise<unknown>): Promise<FederationError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(FederationError);
    return e as FederationError;
  }
  throw new Error("expected a FederationError");
}

describe("default guard refuses private targets without contacting them", () => {
  it.each([
    () => `127.0.0.1:${hs.port}`,
    () => `[::1]:${hs.port}`,
    () => "10.0.0.1:80",
    () => "[::ffff:127.0.0.1]:1",
    () => "localhost",
    () => `localhost:${hs.port}`,
    () => `private.test:${hs.port}`,
  ])("#%#", async (name) => {
    const { client } = makeClient();
    const err = await failure(client.getOpenIdUserinfo(name(), "secret-token"));
    expect(err.kind).toBe("forbidden_address");
    expect(hs.connections).toEqual([]);
    expect(hs.requests).toEqual([]);
  });

  it("invalid server names make no network request at all", async () => {
    const { client, dns } = makeClient();
    for (const name of ["127.1", "a@b", "hs.test:0", "hs.test/x", "", "exa mple.com"]) {
      expect((await failure(client.getOpenIdUserinfo(name, "t"))).kind).toBe("invalid_server_name");
    }
    expect(dns.lookups).toEqual([]);
    expect(dns.srvQueries).toEqual([]);
    expect(hs.connections).toEqual([]);
  });

  it("a well-known delegating to a private address is refused (even with 127.0.0.1 allowlisted)", async () => {
    const { client } = makeClient(allow);
    hs.setWellKnown({ body: { "m.server": `127.0.0.2:${priv.port}` } }, "evil.test");
    expect((await failure(client.getOpenIdUserinfo("evil.test", "t"))).kind).toBe("forbidden_address");
    hs.setWellKnown({ body: { "m.server": `internal.test:${priv.port}` } }, "deleg.test");
    expect((await failure(client.getOpenIdUserinfo("deleg.test", "t"))).kind).toBe("forbidden_address");
    expect(hs.requestsTo(WELL_KNOWN_PATH)).toHaveLength(2);
    expect(priv.connections).toEqual([]);
    hs.setWellKnown(null, "evil.test");
    hs.setWellKnown(null, "deleg.test");
  });

  it("a well-known redirect to a private address is not followed", async () => {
    const { client } = makeClient(allow);
    hs.setWellKnown({ redirect: `https://127.0.0.2:${priv.port}${WELL_KNOWN_PATH}` }, "redir.test");
    expect(await client.resolveServerName("redir.test")).toMatchObject({
      targetHost: "redir.test",
      targetPort: 8448,
      via: "default_port",
    });
    expect(hs.requestsTo(WELL_KNOWN_PATH)).toHaveLength(1);
    expect(priv.connections).toEqual([]);
    hs.setWellKnown(null, "redir.test");
  });

  it("the connector re-checks the connected address", async () => {
    // A base connector that ignores the requested host and connects to 127.0.0.2 (as a DNS trick might).
    const base = buildConnector({});
    const sneaky: buildConnector.connector = (opts, cb) =>
      (base as unknown as (o: buildConnector.Options, c: buildConnector.Callback) => unknown)(
        { ...opts, hostname: "127.0.0.2", port: String(priv.port) },
        cb,
      ) as undefined;
    const connect = guardConnector(sneaky, new IpGuard());
    const err = await new Promise<unknown>((resolve) =>
      connect({ hostname: "8.8.8.8", host: "8.8.8.8:443", protocol: "https:", port: "443" }, (...args) =>
        resolve(args[0]),
      ),
    );
    expect((err as { code?: string }).code).toBe(BLOCKED_CODE);
    expect(priv.requests).toEqual([]);
  });
});

describe("with 127.0.0.1 allowlisted", () => {
  it("userinfo over HTTPS: Host = server name, SNI = its hostname, token URL-encoded", async () => {
    const { client, logs } = makeClient(allow);
    const token = "tok/with?odd&chars= é";
    hs.setUserinfo(token, `@alice:hs.test:${hs.port}`);
    expect(await client.getOpenIdUserinfo(`hs.test:${hs.port}`, token)).toBe(`@alice:hs.test:${hs.port}`);
    const [req] = hs.requestsTo(USERINFO_PATH);
    expect(req).toMatchObject({ method: "GET", host: `hs.test:${hs.port}`, sni: "hs.test" });
    expect(new URLSearchParams(req!.query).get("access_token")).toBe(token);
    expect(hs.requestsTo(WELL_KNOWN_PATH)).toEqual([]);
    expect(JSON.stringify(logs)).not.toContain("tok/with");
  });

  it("hostname lookups with mixed addresses use only the allowed ones", async () => {
    const { client } = makeClient(allow);
    hs.setUserinfo("m", `@m:mixed.test:${hs.port}`);
    expect(await client.getOpenIdUserinfo(`mixed.test:${hs.port}`, "m")).toBe(`@m:mixed.test:${hs.port}`);
  });

  it("IP literal server name: Host is the literal, no SNI", async () => {
    const { client } = makeClient(allow);
    hs.setUserinfo("ip", `@ip:127.0.0.1:${hs.port}`);
    expect(await client.getOpenIdUserinfo(`127.0.0.1:${hs.port}`, "ip")).toBe(`@ip:127.0.0.1:${hs.port}`);
    expect(hs.requestsTo(USERINFO_PATH)[0]).toMatchObject({ host: `127.0.0.1:${hs.port}`, sni: null });
  });

  it("certificate verification: self-signed refused; trusted CA accepted; wrong name refused", async () => {
    hs.setUserinfo("v", `@v:hs.test:${hs.port}`);
    const strict = makeClient({ ...allow, verifyCertificates: true }).client;
    const err = await failure(strict.getOpenIdUserinfo(`hs.test:${hs.port}`, "v"));
    expect(err.kind).toBe("unreachable");
    expect(err.message).toMatch(/TLS/);

    const trusting = makeClient({
      ...allow,
      verifyCertificates: true,
      caCertificates: [hs.certificate!],
    }).client;
    expect(await trusting.getOpenIdUserinfo(`hs.test:${hs.port}`, "v")).toBe(`@v:hs.test:${hs.port}`);
    hs.setUserinfo("ip", `@ip:127.0.0.1:${hs.port}`);
    expect(await trusting.getOpenIdUserinfo(`127.0.0.1:${hs.port}`, "ip")).toBe(`@ip:127.0.0.1:${hs.port}`);
    hs.setUserinfo("w", `@w:wrong.test:${hs.port}`);
    const wrong = await failure(trusting.getOpenIdUserinfo(`wrong.test:${hs.port}`, "w"));
    expect(wrong.kind).toBe("unreachable");
    expect(wrong.message).toMatch(/ALTNAME|TLS/);
  });

  it("refuses a sub on another server, an invalid sub, and maps 401", async () => {
    const { client, logs } = makeClient(allow);
    const name = `hs.test:${hs.port}`;
    hs.setUserinfo("evil-token", "@alice:evil.example");
    hs.setUserinfo("port-token", "@alice:hs.test");
    hs.setUserinfo("junk-token", "alice");
    for (const t of ["evil-token", "port-token", "junk-token"]) {
      const err = await failure(client.getOpenIdUserinfo(name, t));
      expect(err.kind).toBe("bad_response");
      expect(inspect(err, { depth: 10 })).not.toContain(t);
    }
    const err = await failure(client.getOpenIdUserinfo(name, "unknown-token"));
    expect(err).toMatchObject({ kind: "http_status", status: 401, errcode: "M_UNKNOWN_TOKEN" });
    expect(JSON.stringify(logs)).not.toMatch(/evil-token|port-token|junk-token|unknown-token/);
  });

  it.each([false, true])(
    "oversized userinfo (1 MiB, declared length %s) is refused quickly",
    async (declareLength) => {
      const { client } = makeClient(allow);
      hs.setUserinfoBehaviour({ type: "oversized", bytes: 1024 * 1024, declareLength });
      const started = Date.now();
      const err = await failure(client.getOpenIdUserinfo(`hs.test:${hs.port}`, "t"));
      expect(err.kind).toBe("too_large");
      expect(Date.now() - started).toBeLessThan(2000);
    },
  );

  it("a userinfo that never answers times out", async () => {
    const { client } = makeClient({ ...allow, requestTimeoutMs: 300, connectTimeoutMs: 300 });
    hs.setUserinfoBehaviour({ type: "hang" });
    const started = Date.now();
    const err = await failure(client.getOpenIdUserinfo(`hs.test:${hs.port}`, "hang-secret-token"));
    expect(err.kind).toBe("timeout");
    expect(inspect(err, { depth: 10 })).not.toContain("hang-secret-token");
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it("well-known delegation to hs.test:<port>: Host hs.test:<port>, SNI hs.test, result cached", async () => {
    const { client } = makeClient(allow);
    hs.setWellKnown({ body: { "m.server": `hs.test:${hs.port}` } }, "deleg.test");
    hs.setUserinfo("d", "@bob:deleg.test");
    expect(await client.getOpenIdUserinfo("deleg.test", "d")).toBe("@bob:deleg.test");
    expect(await client.getOpenIdUserinfo("deleg.test", "d")).toBe("@bob:deleg.test");
    const wk = hs.requestsTo(WELL_KNOWN_PATH);
    expect(wk).toHaveLength(1);
    expect(wk[0]).toMatchObject({ host: "deleg.test", sni: "deleg.test" });
    const ui = hs.requestsTo(USERINFO_PATH);
    expect(ui).toHaveLength(2);
    for (const r of ui) expect(r).toMatchObject({ host: `hs.test:${hs.port}`, sni: "hs.test" });
    hs.setWellKnown(null, "deleg.test");
  });

  it("no well-known: SRV _matrix-fed._tcp is used, with Host/SNI of the original name", async () => {
    const { client, dns } = makeClient(allow);
    dns.setSrv("_matrix-fed._tcp.srv.test", [{ name: "target.test", port: hs.port, priority: 0, weight: 0 }]);
    hs.setUserinfo("s", "@carol:srv.test");
    expect(await client.getOpenIdUserinfo("srv.test", "s")).toBe("@carol:srv.test");
    expect(hs.requestsTo(WELL_KNOWN_PATH)).toMatchObject([{ host: "srv.test" }]);
    expect(hs.requestsTo(USERINFO_PATH)).toMatchObject([{ host: "srv.test", sni: "srv.test" }]);
    expect(dns.srvQueries).toEqual(["_matrix-fed._tcp.srv.test"]);
    expect(dns.lookups).toContain("target.test");
  });

  it("requests sharing one TCP target never share a connection across TLS names", async () => {
    const { client, dns } = makeClient(allow);
    for (const name of ["srv.test", "deleg.test"]) {
      dns.setSrv(`_matrix-fed._tcp.${name}`, [
        { name: "target.test", port: hs.port, priority: 0, weight: 0 },
      ]);
      hs.setUserinfo(`c-${name}`, `@c:${name}`);
    }
    const names = ["srv.test", "deleg.test", "srv.test", "deleg.test", "srv.test", "deleg.test"];
    const subs = await Promise.all(names.map((n) => client.getOpenIdUserinfo(n, `c-${n}`)));
    expect(subs).toEqual(names.map((n) => `@c:${n}`));
    const reqs = hs.requestsTo(USERINFO_PATH);
    expect(reqs).toHaveLength(6);
    for (const r of reqs) expect(r.sni).toBe(r.host);
  });

  it("well-known redirects are followed (bounded) and bad documents fall back", async () => {
    const { client } = makeClient(allow);
    const wkUrl = (path: string) => `https://hs.test:${hs.port}${path}`;
    hs.route("GET", "/moved", (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ "m.server": "moved.example:443" }));
    });
    hs.setWellKnown({ redirect: wkUrl("/moved"), status: 301 }, "deleg.test");
    expect(await client.resolveServerName("deleg.test")).toMatchObject({
      targetHost: "moved.example",
      targetPort: 443,
      delegated: true,
    });
    expect(hs.requests.map((r) => [r.path, r.host])).toEqual([
      [WELL_KNOWN_PATH, "deleg.test"],
      ["/moved", `hs.test:${hs.port}`],
    ]);

    // A redirect loop, a chain longer than 5, an oversized body and invalid JSON all count as "no well-known".
    hs.setWellKnown({ redirect: wkUrl(WELL_KNOWN_PATH) }, "hs.test");
    hs.setWellKnown({ redirect: wkUrl(WELL_KNOWN_PATH) }, "evil.test");
    for (let i = 0; i < 6; i++) {
      hs.route("GET", `/r${i}`, (_req, res) => {
        res.writeHead(302, { location: wkUrl(`/r${i + 1}`) });
        res.end();
      });
    }
    hs.setWellKnown({ redirect: wkUrl("/r0") }, "srv.test");
    hs.setWellKnown({ body: { "m.server": "x".repeat(70 * 1024) } }, "target.test");
    hs.setWellKnown({ body: "{not json" }, "wrong.test");
    for (const name of ["evil.test", "srv.test", "target.test", "wrong.test"]) {
      expect(await client.resolveServerName(name)).toMatchObject({ targetHost: name, via: "default_port" });
    }
    expect(hs.requestsTo("/r5")).toHaveLength(0);
    expect(hs.requestsTo("/r4")).toHaveLength(1);
    for (const h of ["deleg.test", "hs.test", "evil.test", "srv.test", "target.test", "wrong.test"]) {
      hs.setWellKnown(null, h);
    }
  });

  it("getServerKeys returns verified keys and rejects bad ones", async () => {
    const { client } = makeClient(allow);
    hs.setWellKnown({ body: { "m.server": `hs.test:${hs.port}` } }, "hs.test");
    expect(await client.getServerKeys("hs.test")).toEqual({
      verifyKeys: { [hs.signingKey.keyId]: hs.signingKey.publicKeyBase64 },
      validUntilTs: expect.any(Number),
    });

    // server_name mismatch: ask for the same server under another name.
    expect((await failure(client.getServerKeys(`hs.test:${hs.port}`))).kind).toBe("bad_response");

    // Tampered content: signature no longer verifies.
    hs.route("GET", KEY_PATH, (_req, res) => {
      const orig = hs.signingKey;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          server_name: "hs.test",
          valid_until_ts: 1,
          verify_keys: { [orig.keyId]: { key: orig.publicKeyBase64 } },
          signatures: { "hs.test": { [orig.keyId]: "A".repeat(86) } },
        }),
      );
    });
    expect((await failure(client.getServerKeys("hs.test"))).kind).toBe("bad_response");
    hs.route("GET", KEY_PATH, null);
    hs.setWellKnown(null, "hs.test");
  });

  it("postOnbind delivers the body and reports failures", async () => {
    const { client } = makeClient(allow);
    const body = { medium: "email", address: "a@b.c", mxid: `@a:hs.test:${hs.port}`, invites: [] };
    await client.postOnbind(`hs.test:${hs.port}`, body);
    expect(hs.onbind.delivered).toContainEqual(body);
    hs.onbind.failNext(1, 502);
    expect(await failure(client.postOnbind(`hs.test:${hs.port}`, body))).toMatchObject({
      kind: "http_status",
      status: 502,
    });
    await client.postOnbind(`hs.test:${hs.port}`, body);
    const posts = hs.requestsTo("/_matrix/federation/v1/3pid/onbind");
    expect(posts).toHaveLength(3);
    expect(posts[0]!.headers["content-type"]).toBe("application/json");
    expect(posts[0]!.method).toBe("POST");
  });
});
