import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mappingsJson } from "./lookup.js";

/** Strings of the characters at the edges of the plain fast path, lone surrogates among them. */
const text = fc.oneof(
  fc.string({
    unit: fc.constantFrom(
      "a",
      "Z",
      "0",
      "-",
      "_",
      "@",
      ":",
      ".",
      " ",
      '"',
      "\\",
      "\u0000",
      "\u001f",
      "\u007f",
      "\u2028",
      "\uD800",
      "\uDC00",
      "😀",
      "é",
    ),
  }),
  fc.string({ unit: "binary" }),
);

describe("mappingsJson", () => {
  it("is the JSON of the mappings as an object, for any strings", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(text, text), {
          selector: ([hash]) => hash,
          maxLength: 50,
        }),
        (pairs) => {
          const text = String(mappingsJson(pairs.map(([hash, mxid]) => ({ hash, mxid }))));
          expect(JSON.parse(text)).toEqual({ mappings: Object.fromEntries(pairs) });
          // Well-formed: a lone surrogate is escaped, not written as it is.
          expect(/[\uD800-\uDFFF]/u.test(text)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("writes plain hashes and mxids as they are", () => {
    expect(
      String(
        mappingsJson([
          { hash: "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg", mxid: "@alice:example.org" },
          { hash: "a b", mxid: '@"q":hs' },
        ]),
      ),
    ).toBe(
      '{"mappings":{"n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg":"@alice:example.org","a b":"@\\"q\\":hs"}}',
    );
    expect(mappingsJson([])).toBe('{"mappings":{}}');
  });
});
