import { describe, expect, it } from "vitest";
import { createStubDns } from "../../test/support/fake-homeserver.js";
import type { SrvRecord } from "./dns.js";
import { FederationError } from "./errors.js";
import { ServerNameResolver } from "./resolver.js";
import {
  WELL_KNOWN_DEFAULT_CACHE_MS,
  WELL_KNOWN_FAILURE_CACHE_MS,
  WELL_KNOWN_MAX_CACHE_MS,
  WELL_KNOWN_MIN_CACHE_MS,
  type WellKnownResult,
  wellKnownCacheMs,
} from "./well-known.js";

function setup(opts: { wellKnown?: Record<string, string>; srv?: Record<string, SrvRecord[]> } = {}) {
  let now = 1_000_000;
  const wellKnownCalls: string[] = [];
  const wk = new Map(Object.entries(opts.wellKnown ?? {}));
  let cacheMs = WELL_KNOWN_DEFAULT_CACHE_MS;
  const dns = createStubDns({ srv: opts.srv ?? {} });
  const resolver = new ServerNameResolver({
    dns,
    now: () => now,
    random: () => 0,
    wellKnown: async (host): Promise<WellKnownResult> => {
      wellKnownCalls.push(host);
      const server = wk.get(host);
      return server === undefined
        ? { server: null, cacheMs: WELL_KNOWN_FAILURE_CACHE_MS, error: "404" }
        : { server, cacheMs };
    },
  });
  return {
    resolver,
    dns,
    wellKnownCalls,
    wk,
    advance: (ms: number) => {
      now += ms;
    },
    setCacheMs: (ms: number) => {
      cacheMs = ms;
    },
  };
}

const srv = (name: string, port: number, priority = 0, weight = 0): SrvRecord => ({
  name,
  port,
  priority,
  weight,
});

describe("ServerNameResolver", () => {
  it("IP literals are used directly, without well-known or DNS", async () => {
    const { resolver, wellKnownCalls, dns } = setup();
    expect(await resolver.resolve("1.2.3.4")).toEqual({
      targetHost: "1.2.3.4",
      targetPort: 8448,
      hostHeader: "1.2.3.4",
      tlsServerName: null,
      via: "ip_literal",
      delegated: false,
    });
    expect(await resolver.resolve("[2606:4700::1]:443")).toMatchObject({
      targetHost: "2606:4700::1",
      targetPort: 443,
      hostHeader: "[2606:4700::1]:443",
      tlsServerName: null,
    });
    expect(wellKnownCalls).toEqual([]);
    expect(dns.srvQueries).toEqual([]);
  });

  it("hostname with port is used directly", async () => {
    const { resolver, wellKnownCalls } = setup();
    expect(await resolver.resolve("hs.example:8443")).toMatchObject({
      targetHost: "hs.example",
      targetPort: 8443,
      hostHeader: "hs.example:8443",
      tlsServerName: "hs.example",
      via: "explicit_port",
    });
    expect(wellKnownCalls).toEqual([]);
  });

  it("invalid names are refused without any lookup", async () => {
    const { resolver, wellKnownCalls, dns } = setup();
    await expect(resolver.resolve("bad name")).rejects.toMatchObject({ kind: "invalid_server_name" });
    await expect(resolver.resolve("a@b")).rejects.toBeInstanceOf(FederationError);
    expect(wellKnownCalls).toEqual([]);
    expect(dns.srvQueries).toEqual([]);
  });

  it("well-known → IP literal (with and without port)", async () => {
    const { resolver } = setup({ wellKnown: { "a.example": "5.6.7.8", "b.example": "[2606::1]:9000" } });
    expect(await resolver.resolve("a.example")).toMatchObject({
      targetHost: "5.6.7.8",
      targetPort: 8448,
      hostHeader: "5.6.7.8",
      tlsServerName: null,
      delegated: true,
    });
    expect(await resolver.resolve("b.example")).toMatchObject({
      targetHost: "2606::1",
      targetPort: 9000,
      hostHeader: "[2606::1]:9000",
      tlsServerName: null,
    });
  });

  it("well-known → hostname:port (no SRV)", async () => {
    const { resolver, dns } = setup({ wellKnown: { "example.org": "matrix.example.org:443" } });
    expect(await resolver.resolve("example.org")).toEqual({
      targetHost: "matrix.example.org",
      targetPort: 443,
      hostHeader: "matrix.example.org:443",
      tlsServerName: "matrix.example.org",
      via: "explicit_port",
      delegated: true,
    });
    expect(dns.srvQueries).toEqual([]);
  });

  it("well-known → hostname: _matrix-fed SRV, then _matrix SRV, then 8448", async () => {
    const s = setup({
      wellKnown: { "one.org": "d1.org", "two.org": "d2.org", "three.org": "d3.org" },
      srv: {
        "_matrix-fed._tcp.d1.org": [srv("fed.d1.org", 8001)],
        "_matrix._tcp.d1.org": [srv("legacy.d1.org", 8002)],
        "_matrix._tcp.d2.org": [srv("legacy.d2.org.", 8003)],
      },
    });
    expect(await s.resolver.resolve("one.org")).toEqual({
      targetHost: "fed.d1.org",
      targetPort: 8001,
      hostHeader: "d1.org",
      tlsServerName: "d1.org",
      via: "srv_matrix_fed",
      delegated: true,
    });
    expect(await s.resolver.resolve("two.org")).toMatchObject({
      targetHost: "legacy.d2.org",
      targetPort: 8003,
      hostHeader: "d2.org",
      tlsServerName: "d2.org",
      via: "srv_matrix",
    });
    expect(await s.resolver.resolve("three.org")).toMatchObject({
      targetHost: "d3.org",
      targetPort: 8448,
      hostHeader: "d3.org",
      tlsServerName: "d3.org",
      via: "default_port",
      delegated: true,
    });
    expect(s.dns.srvQueries).toEqual([
      "_matrix-fed._tcp.d1.org",
      "_matrix-fed._tcp.d2.org",
      "_matrix._tcp.d2.org",
      "_matrix-fed._tcp.d3.org",
      "_matrix._tcp.d3.org",
    ]);
  });

  it("no well-known: SRV on the original host (Host/TLS stay the original host), then 8448", async () => {
    const s = setup({
      srv: {
        "_matrix-fed._tcp.srv.org": [srv("target.srv.org", 8443)],
        "_matrix._tcp.old.org": [srv("t.old.org", 1)],
      },
    });
    expect(await s.resolver.resolve("srv.org")).toEqual({
      targetHost: "target.srv.org",
      targetPort: 8443,
      hostHeader: "srv.org",
      tlsServerName: "srv.org",
      via: "srv_matrix_fed",
      delegated: false,
    });
    expect(await s.resolver.resolve("old.org")).toMatchObject({ targetHost: "t.old.org", via: "srv_matrix" });
    expect(await s.resolver.resolve("plain.org")).toMatchObject({
      targetHost: "plain.org",
      targetPort: 8448,
      hostHeader: "plain.org",
      via: "default_port",
      delegated: false,
    });
  });

  it("SRV: lowest priority wins, invalid targets are skipped, '.' means unavailable", async () => {
    const s = setup({
      srv: {
        "_matrix-fed._tcp.p.org": [srv("low.p.org", 2, 10), srv("bad name", 3, 0), srv("high.p.org", 1, 20)],
        "_matrix-fed._tcp.dot.org": [srv(".", 0)],
        "_matrix-fed._tcp.ip.org": [srv("127.0.0.1", 8448)],
      },
    });
    expect(await s.resolver.resolve("p.org")).toMatchObject({ targetHost: "low.p.org", targetPort: 2 });
    await expect(s.resolver.resolve("dot.org")).rejects.toMatchObject({ kind: "unreachable" });
    expect(await s.resolver.resolve("ip.org")).toMatchObject({ targetHost: "ip.org", via: "default_port" });
  });

  it("SRV lookup errors other than 'no records' fall through without caching", async () => {
    const s = setup();
    let calls = 0;
    s.dns.resolveSrv = async () => {
      calls++;
      throw Object.assign(new Error("timeout"), { code: "ETIMEOUT" });
    };
    expect(await s.resolver.resolve("x.org")).toMatchObject({ targetPort: 8448 });
    expect(await s.resolver.resolve("x.org")).toMatchObject({ targetPort: 8448 });
    expect(calls).toBe(4);
  });

  it("caches well-known results for cacheMs and failures for 1 h", async () => {
    const s = setup({ wellKnown: { "c.org": "d.c.org:443" } });
    s.setCacheMs(2 * 3600_000);
    await s.resolver.resolve("c.org");
    await s.resolver.resolve("c.org");
    expect(s.wellKnownCalls).toEqual(["c.org"]);
    s.advance(2 * 3600_000 - 1);
    await s.resolver.resolve("c.org");
    expect(s.wellKnownCalls).toHaveLength(1);
    s.advance(1);
    await s.resolver.resolve("c.org");
    expect(s.wellKnownCalls).toHaveLength(2);

    await s.resolver.resolve("fail.org");
    s.advance(3600_000 - 1);
    await s.resolver.resolve("fail.org");
    expect(s.wellKnownCalls.filter((h) => h === "fail.org")).toHaveLength(1);
    s.advance(1);
    s.wk.set("fail.org", "now.fail.org:1");
    expect(await s.resolver.resolve("fail.org")).toMatchObject({ targetHost: "now.fail.org" });
  });

  it("caches SRV answers (including 'none')", async () => {
    const s = setup({ srv: { "_matrix-fed._tcp.s.org": [srv("t.s.org", 1)] } });
    await s.resolver.resolve("s.org");
    await s.resolver.resolve("s.org");
    await s.resolver.resolve("n.org");
    await s.resolver.resolve("n.org");
    expect(s.dns.srvQueries).toEqual([
      "_matrix-fed._tcp.s.org",
      "_matrix-fed._tcp.n.org",
      "_matrix._tcp.n.org",
    ]);
  });

  it("concurrent resolutions share one well-known request", async () => {
    const s = setup({ wellKnown: { "c.org": "d.c.org:443" } });
    await Promise.all([
      s.resolver.resolve("c.org"),
      s.resolver.resolve("c.org"),
      s.resolver.resolve("c.org"),
    ]);
    expect(s.wellKnownCalls).toEqual(["c.org"]);
  });

  it("a delegated name that fails validation is treated as a failed well-known", async () => {
    const s = setup({ wellKnown: { "w.org": "bad name" } });
    expect(await s.resolver.resolve("w.org")).toMatchObject({ targetHost: "w.org", via: "default_port" });
  });
});

describe("wellKnownCacheMs", () => {
  it.each([
    [undefined, WELL_KNOWN_DEFAULT_CACHE_MS],
    ["", WELL_KNOWN_DEFAULT_CACHE_MS],
    ["public", WELL_KNOWN_DEFAULT_CACHE_MS],
    ["max-age=3600", 3600_000],
    ["public, max-age=7200", 7200_000],
    ["max-age=999999999", WELL_KNOWN_MAX_CACHE_MS],
    ["max-age=0", WELL_KNOWN_MIN_CACHE_MS],
    ["no-store", WELL_KNOWN_MIN_CACHE_MS],
    ["max-age=abc", WELL_KNOWN_DEFAULT_CACHE_MS],
  ])("%j → %d", (header, ms) => {
    expect(wellKnownCacheMs(header)).toBe(ms);
  });
});
