import { describe, expect, it } from "vitest";
import { tooLong } from "./schema.js";

describe("tooLong", () => {
  it("counts characters as JSON schema does (a character outside the BMP is one)", () => {
    expect(tooLong(["ab", "abc", "abcd"], 3)).toBe(2);
    expect(tooLong(["😀😀😀"], 3)).toBe(-1);
    expect(tooLong(["😀😀😀😀"], 3)).toBe(0);
    expect(tooLong([], 3)).toBe(-1);
  });
});
