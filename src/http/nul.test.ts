import { describe, expect, it } from "vitest";
import { jsonHoldsNul, urlHoldsNul } from "./nul.js";

describe("NUL in a request", () => {
  it("is found in JSON strings and keys, exactly", () => {
    const holds = (v: object) => jsonHoldsNul(JSON.stringify(v));
    expect(holds({ a: "x\u0000y" })).toBe(true);
    expect(holds({ "k\u0000": 1 })).toBe(true);
    expect(holds({ a: ["ok", { b: "\u0000" }] })).toBe(true);
    expect(holds({ a: "\\u0000" })).toBe(false);
    expect(holds({ a: "\\\u0000" })).toBe(true);
    expect(holds({ a: "u0000 \u0001" })).toBe(false);
    expect(jsonHoldsNul('{"a":"\\\\\\u0000"}')).toBe(true);
    expect(jsonHoldsNul('{"a":"\\\\\\\\u0000"}')).toBe(false);
  });

  it("is found in a percent-encoded request target", () => {
    expect(urlHoldsNul("/x?address=a%00b")).toBe(true);
    expect(urlHoldsNul("/x%00")).toBe(true);
    expect(urlHoldsNul("/x?next_link=https%3A%2F%2Fa%2F%2500")).toBe(false);
  });
});
