import { describe, expect, it } from "vitest";
import { formatHost, parseServerName, serverPartOfUserId } from "./server-name.js";

describe("parseServerName", () => {
  it.each([
    ["matrix.org", { host: "matrix.org", ipLiteral: false }],
    ["matrix.org:8888", { host: "matrix.org", port: 8888, ipLiteral: false }],
    ["localhost", { host: "localhost", ipLiteral: false }],
    ["Example-1.ORG", { host: "Example-1.ORG", ipLiteral: false }],
    ["a", { host: "a", ipLiteral: false }],
    ["1.2.3.4", { host: "1.2.3.4", ipLiteral: true }],
    ["1.2.3.4:1234", { host: "1.2.3.4", port: 1234, ipLiteral: true }],
    ["0.0.0.0", { host: "0.0.0.0", ipLiteral: true }],
    ["[1234:5678::abcd]", { host: "1234:5678::abcd", ipLiteral: true }],
    ["[1234:5678::abcd]:5678", { host: "1234:5678::abcd", port: 5678, ipLiteral: true }],
    ["[::1]", { host: "::1", ipLiteral: true }],
    ["[::ffff:127.0.0.1]:1", { host: "::ffff:127.0.0.1", port: 1, ipLiteral: true }],
    ["host:65535", { host: "host", port: 65535, ipLiteral: false }],
    ["host:1", { host: "host", port: 1, ipLiteral: false }],
    [`${"a".repeat(63)}.com`, { host: `${"a".repeat(63)}.com`, ipLiteral: false }],
  ])("accepts %s", (input, expected) => {
    expect(parseServerName(input)).toEqual(expected);
  });

  const long255 = `${"a.".repeat(127)}a`; // 255 chars
  it("accepts exactly 255 characters and rejects 256", () => {
    expect(long255).toHaveLength(255);
    expect(parseServerName(long255)).not.toBeNull();
    expect(parseServerName(`${long255}b`)).toBeNull();
  });

  it.each([
    "",
    " ",
    "a@b",
    "user@example.com",
    "user:pass@example.com",
    "host:0",
    "host:65536",
    "host:99999",
    "host:123456",
    "host:",
    "host:08448",
    "host:+80",
    "host:-1",
    "host:80:80",
    "[::1",
    "::1",
    "[::1]:",
    "[::1]80",
    "[::1]:0",
    "[fe80::1%eth0]",
    "[127.0.0.1]",
    "[]",
    "[g::1]",
    "exa mple.com",
    " example.com",
    "example.com ",
    "example.com\n",
    "example.com.",
    ".example.com",
    "example..com",
    "example.com/path",
    "example.com/",
    "example.com?x",
    "example.com#x",
    "https://example.com",
    "exam_ple.com",
    "exämple.com",
    "*.example.com",
    `${"a".repeat(64)}.com`,
    "256.1.1.1",
    "1.2.3",
    "127.1",
    "1.2.3.4.5",
    "010.0.0.1",
    "0x7f000001",
    "foo.0x7f",
    "example.123",
    "1.2.3.4:0",
  ])("rejects %j", (input) => {
    expect(parseServerName(input)).toBeNull();
  });

  it("rejects non-strings", () => {
    expect(parseServerName(undefined as unknown as string)).toBeNull();
    expect(parseServerName(42 as unknown as string)).toBeNull();
  });
});

describe("serverPartOfUserId", () => {
  it.each([
    ["@alice:example.org", "example.org"],
    ["@alice:example.org:8448", "example.org:8448"],
    ["@a:1.2.3.4", "1.2.3.4"],
    ["@bob:[::1]:8448", "[::1]:8448"],
    ["@x.y_z=-/+:hs", "hs"],
    ["@Legacy!User:example.org", "example.org"],
  ])("%s → %s", (id, server) => {
    expect(serverPartOfUserId(id)).toBe(server);
  });

  it.each([
    "",
    "@",
    "alice:example.org",
    "@:example.org",
    "@alice",
    "@alice:",
    "@alice:exa mple.org",
    "@al ice:example.org",
    "@alïce:example.org",
    "@alice:example.org/x",
    "@alice:host:0",
    "#room:example.org",
    `@${"a".repeat(250)}:example.org`,
  ])("rejects %j", (id) => {
    expect(serverPartOfUserId(id)).toBeNull();
  });
});

describe("formatHost", () => {
  it("brackets IPv6 only", () => {
    expect(formatHost("::1", 8448)).toBe("[::1]:8448");
    expect(formatHost("1.2.3.4")).toBe("1.2.3.4");
    expect(formatHost("hs.test", 443)).toBe("hs.test:443");
  });
});
