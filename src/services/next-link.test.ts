import { describe, expect, it } from "vitest";
import { NextLinkPolicy } from "./next-link.js";

describe("NextLinkPolicy", () => {
  it("never redirects with an empty list", () => {
    expect(new NextLinkPolicy([]).allows("https://app.example.org/")).toBe(false);
  });

  it("matches host names exactly", () => {
    const p = new NextLinkPolicy(["App.Example.org"]);
    expect(p.allows("https://app.example.org/#/done")).toBe(true);
    expect(p.allows("http://app.example.org:8080/x")).toBe(true);
    expect(p.allows("https://evil.app.example.org/")).toBe(false);
    expect(p.allows("https://app.example.org.evil.test/")).toBe(false);
  });

  it("anchors regular expressions to the whole URL", () => {
    const p = new NextLinkPolicy(["/https:\\/\\/[a-z]+\\.example\\.org\\/.*/", "/app\\.example\\.net/"]);
    expect(p.allows("https://chat.example.org/welcome")).toBe(true);
    expect(p.allows("https://evil.test/?https://chat.example.org/")).toBe(false);
    expect(p.allows("https://evil.test/?app.example.net")).toBe(false);
  });

  it("refuses anything but http(s)", () => {
    const p = new NextLinkPolicy(["/.*/"]);
    for (const url of [
      "javascript:alert(1)",
      "data:text/html,x",
      "file:///etc/passwd",
      "ftp://x/",
      "not a url",
    ]) {
      expect(p.allows(url), url).toBe(false);
      expect(NextLinkPolicy.sanitize(url)).toBeNull();
    }
    expect(p.allows("https://anything.example/")).toBe(true);
  });
});
