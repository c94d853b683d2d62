import { describe, expect, it } from "vitest";
import { nulField } from "./nul.js";

describe("nulField", () => {
  it("names the first text field holding a NUL, and nothing else", () => {
    expect(nulField({ ts: 1, room_id: "!r\u0000:hs", sender: "\u0000" })).toBe("room_id");
    expect(nulField({ ts: 0, room_id: "!r:hs", sender: null, note: "\\u0000" })).toBeUndefined();
  });
});
