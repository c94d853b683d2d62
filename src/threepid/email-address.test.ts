import { describe, expect, it } from "vitest";
import { casefold } from "./casefold.js";
import { normaliseEmail } from "./email-address.js";
import { redactEmail, truncate } from "./redact.js";

describe("casefold", () => {
  it("folds like Python's str.casefold, not toLowerCase", () => {
    expect(casefold("Strauß@Example.com")).toBe("strauss@example.com");
    expect(casefold("ΣΊΣΥΦΟΣ")).toBe("σίσυφοσ");
    expect(casefold("ﬁle")).toBe("file");
    expect(casefold("Kelvin\u212A")).toBe("kelvink");
    expect(casefold("ABC@DEF.ORG")).toBe("abc@def.org");
  });
});

describe("normaliseEmail", () => {
  it.each([
    ["Alice@Example.ORG", "alice@example.org"],
    ["Strauß@Example.com", "strauss@example.com"],
    ["first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"],
    ["user@bücher.example", "user@bücher.example"],
    ["a@localhost", "a@localhost"],
    // IDNA: fullwidth and other non-normalised domains are stored in their normal form.
    ["alice@ｅｘａｍｐｌｅ.org", "alice@example.org"],
    ["alice@EXAMPLE．ORG", "alice@example.org"],
    ["user@xn--bcher-kva.example", "user@bücher.example"],
    ["user@bu\u0308cher.example", "user@bücher.example"],
  ])("accepts %s", (input, expected) => {
    expect(normaliseEmail(input)).toBe(expected);
  });

  it.each([
    "a@b@c",
    "Alice <alice@example.org>",
    "mailto:alice@example.org",
    "alice@",
    "@example.org",
    "alice",
    "al ice@example.org",
    "alice@exa mple.org",
    "alice@example..org",
    "alice@-example.org",
    "alice@[127.0.0.1]",
    ".alice@example.org",
    "al..ice@example.org",
    "alice\r\n@example.org",
    "alice@example.org\nBcc: x@y.z",
    `${"a".repeat(65)}@example.org`,
    `a@${"b".repeat(500)}.org`,
    // Invisible or broken characters: a lone surrogate, zero-width, bidi controls, a soft hyphen.
    "ali\ud800ce@example.org",
    "alice@exa\udc00mple.org",
    "ali\u200bce@example.org",
    "alice@exa\u200dmple.org",
    "\u202eecila@example.org",
    "alice\u2066@example.org",
    "ali\u00adce@example.org",
    "alice@exam\u00adple.org",
    "\ufeffalice@example.org",
    "alice@123",
  ])("rejects %j", (input) => {
    expect(normaliseEmail(input)).toBeNull();
  });
});

describe("redaction", () => {
  it("redacts like sydent", () => {
    expect(redactEmail("alice@example.org")).toBe("ali...@exa...");
    expect(redactEmail("bob@ex.io")).toBe("b...@ex....");
    expect(redactEmail("bob@io")).toBe("b...@i...");
    expect(redactEmail("a@b.c")).toBe("...@b...");
    expect(redactEmail("a@b")).toBe("...@...");
  });

  it("truncates long names with an ellipsis", () => {
    expect(truncate("a".repeat(20), 20, 19)).toBe("a".repeat(20));
    expect(truncate("a".repeat(21), 20, 19)).toBe(`${"a".repeat(19)}…`);
  });
});
