import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  encodeHeaderText,
  isSingleBareAddress,
  messageIdHost,
  randomBoundary,
  rfc2822Date,
  sanitizeHeaderText,
  stripLineBreaks,
} from "./mime.js";
import { resolveBrand } from "./templates.js";

function decodeWords(s: string): string {
  return s
    .split(" ")
    .map((w) => {
      const m = /^=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=$/.exec(w);
      return m ? Buffer.from(m[1] ?? "", "base64") : Buffer.from(w, "utf8");
    })
    .reduce<Buffer>((acc, b) => Buffer.concat([acc, b]), Buffer.alloc(0))
    .toString("utf8");
}

describe("resolveBrand", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "seraph-brands-"));
    await mkdir(path.join(dir, "matrix-org"));
    await mkdir(path.join(dir, "vector-im"));
    await mkdir(path.join(dir, "a"));
    await mkdir(path.join(dir, "a", "b"));
    await writeFile(path.join(dir, "file.txt"), "not a dir");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("returns an existing brand", () => {
    expect(resolveBrand(dir, "vector-im", "matrix-org")).toBe("vector-im");
    expect(resolveBrand(dir, "matrix-org", "matrix-org")).toBe("matrix-org");
  });

  it.each([
    ["../etc"],
    [".."],
    ["."],
    ["a/b"],
    ["a\\b"],
    ["/etc"],
    ["unknown"],
    [""],
    ["file.txt"],
    ["vector-im\0"],
    [".hidden"],
    ["x".repeat(101)],
  ])("falls back to the default for %j", (requested) => {
    expect(resolveBrand(dir, requested, "matrix-org")).toBe("matrix-org");
  });

  it("falls back when nothing is requested or the directory is missing", () => {
    expect(resolveBrand(dir, undefined, "matrix-org")).toBe("matrix-org");
    expect(resolveBrand(path.join(dir, "nope"), "vector-im", "matrix-org")).toBe("matrix-org");
  });
});

describe("header helpers", () => {
  it("sanitizeHeaderText collapses controls and line breaks", () => {
    expect(sanitizeHeaderText("a\r\nBcc: evil@x\t\u0000b\u2028c  ")).toBe("a Bcc: evil@x b c");
  });

  it("stripLineBreaks replaces CR and LF by spaces", () => {
    expect(stripLineBreaks("a\r\nb\nc\rd")).toBe("a b c d");
  });

  it("encodeHeaderText keeps plain ASCII and encodes the rest as RFC 2047 words", () => {
    expect(encodeHeaderText("Hello there")).toBe("Hello there");
    const enc = encodeHeaderText("Zoë invited you");
    expect(enc).toMatch(/^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=$/);
    expect(decodeWords(enc)).toBe("Zoë invited you");
    // Text that looks like an encoded word is encoded so it is not decoded as one.
    expect(encodeHeaderText("=?UTF-8?B?SGk=?=")).toMatch(/^=\?UTF-8\?B\?/);
  });

  it("encodeHeaderText splits long text into words <= 75 chars, never inside a character, bounded", () => {
    const long = "€".repeat(400);
    const enc = encodeHeaderText(long);
    const words = enc.split(" ");
    expect(words.length).toBeGreaterThan(1);
    for (const w of words) expect(w.length).toBeLessThanOrEqual(75);
    const decoded = decodeWords(enc);
    expect(decoded).toMatch(/^€+$/);
    expect(`Subject: ${enc}`.length).toBeLessThan(998);
    expect(encodeHeaderText("a\r\nBcc: x")).toBe("a Bcc: x");
  });

  it("randomBoundary gives 32 fresh alphanumerics", () => {
    const a = randomBoundary();
    const b = randomBoundary();
    expect(a).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(b).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(a).not.toBe(b);
  });

  it("rfc2822Date formats a UTC date", () => {
    expect(rfc2822Date(new Date(Date.UTC(2025, 0, 2, 3, 4, 5)))).toBe("Thu, 02 Jan 2025 03:04:05 +0000");
  });

  it("messageIdHost uses the explicit host, else the From domain", () => {
    expect(messageIdHost("mx.example.net", "a@b.org")).toBe("mx.example.net");
    expect(messageIdHost(undefined, "Matrix <noreply@example.org>")).toBe("example.org");
    expect(messageIdHost(undefined, "nonsense")).toBe("localhost");
  });
});

describe("isSingleBareAddress", () => {
  it.each(["alice@example.org", "a.b+tag@sub.example.co.uk", "x@localhost"])("accepts %s", (a) => {
    expect(isSingleBareAddress(a)).toBe(true);
  });
  it.each([
    "",
    "alice",
    "@example.org",
    "alice@",
    "a@b@c.org",
    "a@b.org, c@d.org",
    "a@b.org;c@d.org",
    "Alice <a@b.org>",
    "a@b.org\r\nBcc: evil@x",
    "a@b.org\nBcc: evil@x",
    "a @b.org",
    '"a b"@c.org',
    `${"a".repeat(320)}@b.org`,
  ])("rejects %j", (a) => {
    expect(isSingleBareAddress(a)).toBe(false);
  });
});
