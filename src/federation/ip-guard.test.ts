import { describe, expect, it } from "vitest";
import { embeddedIPv4, IpGuard, ipv6ToBytes, parseCidr } from "./ip-guard.js";

describe("IpGuard defaults", () => {
  const guard = new IpGuard();

  it.each([
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "10.0.0.1",
    "100.64.1.1",
    "169.254.1.1",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.1",
    "192.0.2.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:10.1.2.3",
    "::127.0.0.1",
    "2002:7f00:1::1",
    "2002:7f00:1::",
    "2002:c0a8:101::1",
    "64:ff9b::7f00:1",
    "64:ff9b::10.0.0.1",
    "fe80::1%eth0",
    "not-an-ip",
    "",
  ])("refuses %s", (ip) => {
    expect(guard.isAllowed(ip)).toBe(false);
  });

  it.each([
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",
    "100.128.0.1",
    "2606:4700::1111",
    "2a00:1450:4001::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
  ])("allows %s", (ip) => {
    expect(guard.isAllowed(ip)).toBe(true);
  });
});

describe("IpGuard configuration", () => {
  it("allowlist wins over the default denylist (and covers the IPv4-mapped form)", () => {
    const guard = new IpGuard({ allowlist: ["127.0.0.1/32"] });
    expect(guard.isAllowed("127.0.0.1")).toBe(true);
    expect(guard.isAllowed("::ffff:127.0.0.1")).toBe(true);
    expect(guard.isAllowed("127.0.0.2")).toBe(false);
    expect(guard.isAllowed("::1")).toBe(false);
  });

  it("allowlist wins over the configured denylist", () => {
    const guard = new IpGuard({ allowlist: ["8.8.8.8"], denylist: ["8.8.0.0/16"] });
    expect(guard.isAllowed("8.8.8.8")).toBe(true);
    expect(guard.isAllowed("8.8.4.4")).toBe(false);
    expect(guard.isAllowed("::ffff:8.8.4.4")).toBe(false);
    expect(guard.isAllowed("2002:808:404::")).toBe(false);
  });

  it("extra IPv6 denylist entries apply", () => {
    const guard = new IpGuard({ denylist: ["2606:4700::/32"] });
    expect(guard.isAllowed("2606:4700::1111")).toBe(false);
    expect(guard.isAllowed("2a00:1450::1")).toBe(true);
  });

  it("IPv6 allowlist", () => {
    const guard = new IpGuard({ allowlist: ["::1/128"] });
    expect(guard.isAllowed("::1")).toBe(true);
    expect(guard.isAllowed("127.0.0.1")).toBe(false);
  });

  it("rejects invalid CIDRs", () => {
    expect(() => new IpGuard({ allowlist: ["10.0.0.0/33"] })).toThrow(TypeError);
    expect(() => new IpGuard({ denylist: ["example.com"] })).toThrow(TypeError);
    expect(() => new IpGuard({ denylist: ["10.0.0.0/x"] })).toThrow(TypeError);
  });
});

describe("helpers", () => {
  it("parseCidr", () => {
    expect(parseCidr("10.0.0.0/8")).toEqual({ address: "10.0.0.0", prefix: 8, family: "ipv4" });
    expect(parseCidr("1.2.3.4")).toEqual({ address: "1.2.3.4", prefix: 32, family: "ipv4" });
    expect(parseCidr("fc00::/7")).toEqual({ address: "fc00::", prefix: 7, family: "ipv6" });
    expect(parseCidr("::ffff:10.0.0.0/104")).toEqual({ address: "10.0.0.0", prefix: 8, family: "ipv4" });
  });

  it("ipv6ToBytes", () => {
    expect(Buffer.from(ipv6ToBytes("::1")).toString("hex")).toBe("00000000000000000000000000000001");
    expect(Buffer.from(ipv6ToBytes("::ffff:1.2.3.4")).toString("hex")).toBe(
      "00000000000000000000ffff01020304",
    );
    expect(Buffer.from(ipv6ToBytes("2001:db8::")).toString("hex")).toBe("20010db8000000000000000000000000");
    expect(Buffer.from(ipv6ToBytes("1:2:3:4:5:6:7:8")).toString("hex")).toBe(
      "00010002000300040005000600070008",
    );
    expect(Buffer.from(ipv6ToBytes("1::8")).toString("hex")).toBe("00010000000000000000000000000008");
  });

  it("embeddedIPv4", () => {
    expect(embeddedIPv4("::ffff:7f00:1")).toBe("127.0.0.1");
    expect(embeddedIPv4("64:ff9b::a00:1")).toBe("10.0.0.1");
    expect(embeddedIPv4("2002:7f00:1::1")).toBe("127.0.0.1");
    expect(embeddedIPv4("2606:4700::1111")).toBeNull();
    expect(embeddedIPv4("8.8.8.8")).toBeNull();
  });
});

describe("IPv4-translated addresses", () => {
  it("refuses ::ffff:0:0:0/96 (SIIT)", () => {
    expect(new IpGuard().isAllowed("::ffff:0:7f00:1")).toBe(false);
  });
});
