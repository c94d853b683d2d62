import { describe, expect, it } from "vitest";
import { originatorFor, renderSmsBody, smsConfigSchema, smsDestinationAllowed } from "./index.js";

const US = "+12125550123";
const CA = "+16135550123";
const GB = "+447400123456";
const GG = "+447911123456"; // a +44 number that libphonenumber places in Guernsey
const FR = "+33612345678";
const DE = "+4915112345678";

describe("renderSmsBody", () => {
  it("substitutes every {token}", () => {
    expect(renderSmsBody("Your code is {token}", "123456")).toBe("Your code is 123456");
    expect(renderSmsBody("{token} / {token}", "42")).toBe("42 / 42");
  });

  it("treats {{ and }} as literal braces and leaves other placeholders alone", () => {
    expect(renderSmsBody("{{token}} is {token} {other}", "9")).toBe("{token} is 9 {other}");
    expect(renderSmsBody("}}{{", "9")).toBe("}{");
  });

  it("does not interpret $ patterns in the token", () => {
    expect(renderSmsBody("code {token}", "$&$1$$")).toBe("code $&$1$$");
  });
});

describe("smsDestinationAllowed", () => {
  it("allows everything by default", () => {
    const cfg = smsConfigSchema.parse({});
    for (const n of [US, CA, GB, FR, "+80012345678"]) expect(smsDestinationAllowed(cfg, n)).toBe(true);
  });

  it("rejects one region and allows the others (by region, not calling code)", () => {
    const cfg = smsConfigSchema.parse({ country_rules: { US: "reject" } });
    expect(smsDestinationAllowed(cfg, US)).toBe(false);
    expect(smsDestinationAllowed(cfg, CA)).toBe(true); // same calling code 1, region CA
    expect(smsDestinationAllowed(cfg, GB)).toBe(true);
    expect(smsDestinationAllowed(cfg, FR)).toBe(true);
  });

  it("default reject with an allow-list", () => {
    const cfg = smsConfigSchema.parse({
      default_country_rule: "reject",
      country_rules: { GB: "allow", FR: "allow" },
    });
    expect(smsDestinationAllowed(cfg, GB)).toBe(true);
    expect(smsDestinationAllowed(cfg, FR)).toBe(true);
    expect(smsDestinationAllowed(cfg, GG)).toBe(false); // +44 but not GB
    expect(smsDestinationAllowed(cfg, DE)).toBe(false);
    expect(smsDestinationAllowed(cfg, US)).toBe(false);
    expect(smsDestinationAllowed(cfg, "+80012345678")).toBe(false); // non-geographic → default
  });

  it("tolerates a missing + and fails closed on unparseable or invalid numbers", () => {
    const cfg = smsConfigSchema.parse({});
    expect(smsDestinationAllowed(cfg, "447400123456")).toBe(true);
    expect(smsDestinationAllowed(cfg, "")).toBe(false);
    expect(smsDestinationAllowed(cfg, "not a number")).toBe(false);
    expect(smsDestinationAllowed(cfg, "+4479")).toBe(false);
    expect(smsDestinationAllowed(cfg, "+19999999999")).toBe(false);
  });
});

describe("originatorFor", () => {
  const cfg = smsConfigSchema.parse({
    originators: {
      "44": { type: "alpha", text: "Seraph" },
      "1": { type: "short", text: "12345" },
      default: { type: "long", text: "447400000001" },
    },
  });

  it("picks by calling code, then default", () => {
    expect(originatorFor(cfg, GB)).toBe("Seraph");
    expect(originatorFor(cfg, GG)).toBe("Seraph"); // calling code 44 as well
    expect(originatorFor(cfg, US)).toBe("12345");
    expect(originatorFor(cfg, CA)).toBe("12345");
    expect(originatorFor(cfg, FR)).toBe("+447400000001"); // long numbers are normalised to E.164
    expect(originatorFor(cfg, "garbage")).toBe("+447400000001");
  });

  it("is undefined without a match or default", () => {
    const only44 = smsConfigSchema.parse({ originators: { "44": { type: "alpha", text: "Seraph" } } });
    expect(originatorFor(only44, FR)).toBeUndefined();
    expect(originatorFor(smsConfigSchema.parse({}), GB)).toBeUndefined();
  });
});
