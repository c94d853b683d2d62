import { describe, expect, it } from "vitest";
import { canonicalJson, compareCodePoints } from "./canonical-json.js";

// Input/output pairs from the Matrix spec appendix "Canonical JSON" (examples section).
const APPENDIX: Array<[string, string]> = [
  ["{}", "{}"],
  ['{\n    "one": 1,\n    "two": "Two"\n}', '{"one":1,"two":"Two"}'],
  ['{\n    "b": "2",\n    "a": "1"\n}', '{"a":"1","b":"2"}'],
  ['{"b":"2","a":"1"}', '{"a":"1","b":"2"}'],
  [
    '{"auth":{"success":true,"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"medium":"email","address":"john.doe@example.org"},{"medium":"msisdn","address":"123456789"}]}}}',
    '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}',
  ],
  ['{\n    "a": "日本語"\n}', '{"a":"日本語"}'],
  ['{\n    "本": 2,\n    "日": 1\n}', '{"日":1,"本":2}'],
  ['{\n    "a": "\\u65E5"\n}', '{"a":"日"}'],
  ['{\n    "a": null\n}', '{"a":null}'],
  ['{\n    "a": -0,\n    "b": 1e10\n}', '{"a":0,"b":10000000000}'],
];

describe("canonicalJson", () => {
  it.each(APPENDIX)("spec appendix example %#", (input, expected) => {
    expect(canonicalJson(JSON.parse(input))).toBe(expected);
  });

  it("orders astral-plane keys by code point, not UTF-16 unit", () => {
    // U+1F600 (surrogate pair D83D DE00) sorts after U+FFFF by code point.
    expect(canonicalJson({ "\u{1F600}": 1, "\uFFFF": 2 })).toBe('{"\uFFFF":2,"\u{1F600}":1}');
    expect(compareCodePoints("\u{1F600}", "\uE000")).toBeGreaterThan(0);
    expect(compareCodePoints("a", "b")).toBeLessThan(0);
    expect(compareCodePoints("ab", "a")).toBeGreaterThan(0);
  });

  it("escapes control characters as lowercase \\u00xx and nothing else", () => {
    expect(canonicalJson({ a: '\u001f\u0000\n\t"\\/é\u2028' })).toBe(
      '{"a":"\\u001f\\u0000\\n\\t\\"\\\\/é\u2028"}',
    );
  });

  it("rejects floats, unsafe integers and non-JSON values", () => {
    expect(() => canonicalJson({ a: 1.5 })).toThrow(TypeError);
    expect(() => canonicalJson({ a: 2 ** 53 })).toThrow(TypeError);
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ a: () => 1 })).toThrow(TypeError);
    expect(canonicalJson({ a: 2 ** 53 - 1, b: -(2 ** 53 - 1) })).toBe(
      '{"a":9007199254740991,"b":-9007199254740991}',
    );
  });

  it("drops undefined members and keeps nested arrays in order", () => {
    expect(canonicalJson({ b: [3, { z: 1, y: [] }], a: undefined })).toBe('{"b":[3,{"y":[],"z":1}]}');
  });
});
