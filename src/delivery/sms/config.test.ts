import { describe, expect, it } from "vitest";
import { smsConfigSchema } from "./index.js";

const SID = `AC${"0123456789abcdef".repeat(2)}`;
const MG = `MG${"fedcba9876543210".repeat(2)}`;

function issues(input: unknown): string[] {
  const r = smsConfigSchema.safeParse(input);
  if (r.success) return [];
  return r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("smsConfigSchema", () => {
  it("fills every default from nothing or {}", () => {
    const expected = {
      provider: "log",
      body_template: "Your code is {token}",
      originators: {},
      country_rules: {},
      default_country_rule: "allow",
    };
    expect(smsConfigSchema.parse(undefined)).toEqual(expected);
    expect(smsConfigSchema.parse({})).toEqual(expected);
  });

  it("fills twilio and http defaults", () => {
    const c = smsConfigSchema.parse({
      provider: "twilio",
      twilio: { account_sid: SID, auth_token: "t", from: "+15005550006" },
      http: { url: "https://sms.example.org/send" },
    });
    expect(c.twilio).toEqual({
      account_sid: SID,
      auth_token: "t",
      from: "+15005550006",
      api_base_url: "https://api.twilio.com",
      timeout_ms: 10_000,
    });
    expect(c.http).toEqual({ url: "https://sms.example.org/send", timeout_ms: 10_000 });
  });

  it("is strict", () => {
    expect(issues({ bodyTemplate: "x {token}" }).join()).toMatch(/bodyTemplate/);
    expect(issues({ http: { url: "https://x.example", extra: 1 } }).join()).toMatch(/extra/);
  });

  it("requires the selected provider's section", () => {
    expect(issues({ provider: "twilio" })).toEqual([expect.stringMatching(/^twilio: /)]);
    expect(issues({ provider: "http" })).toEqual([expect.stringMatching(/^http: /)]);
    expect(issues({ provider: "sns" }).length).toBe(1);
  });

  it("validates twilio settings", () => {
    const base = { account_sid: SID, auth_token: "t" };
    expect(issues({ twilio: base }).join()).toMatch(/from.*messaging_service_sid/);
    expect(issues({ twilio: { ...base, messaging_service_sid: MG } })).toEqual([]);
    expect(issues({ twilio: { ...base, from: "x", account_sid: "AC123" } }).join()).toMatch(/account_sid/);
    expect(
      issues({ twilio: { ...base, from: "x", api_base_url: "http://twilio.example.org" } }).join(),
    ).toMatch(/api_base_url: must be https/);
    expect(issues({ twilio: { ...base, from: "x", api_base_url: "http://127.0.0.1:9" } })).toEqual([]);
    expect(
      issues({ twilio: { ...base, from: "x", api_base_url: "https://u:p@api.twilio.com" } }).join(),
    ).toMatch(/credentials/);
  });

  it("requires {token} in the body template", () => {
    expect(issues({ body_template: "Hello" }).join()).toMatch(/\{token\}/);
    expect(issues({ body_template: "Hello {{token}}" }).join()).toMatch(/\{token\}/);
    expect(issues({ body_template: "{token} is your Seraph code" })).toEqual([]);
  });

  it("validates country_rules keys as ISO alpha-2 regions, normalised to upper case", () => {
    expect(issues({ country_rules: { GB: "reject", US: "allow" } })).toEqual([]);
    expect(issues({ country_rules: { UK: "reject" } }).join()).toMatch(/GB/);
    expect(smsConfigSchema.parse({ country_rules: { gb: "reject", Fr: "allow" } }).country_rules).toEqual({
      GB: "reject",
      FR: "allow",
    });
    expect(issues({ country_rules: { gb: "reject", GB: "allow" } }).join()).toMatch(/conflicting/);
    expect(issues({ country_rules: { "44": "reject" } }).join()).toMatch(/not calling codes/);
    expect(issues({ country_rules: { ZZ: "reject" } }).length).toBe(1);
    expect(issues({ country_rules: { GB: "block" } }).length).toBe(1);
  });

  it("validates originators", () => {
    expect(
      issues({
        originators: {
          "44": { type: "alpha", text: "Seraph" },
          "1": { type: "short", text: "12345" },
          default: { type: "long", text: "+447400000001" },
        },
      }),
    ).toEqual([]);
    expect(issues({ originators: { GB: { type: "alpha", text: "Seraph" } } }).length).toBe(1);
    expect(issues({ originators: { "44": { type: "alpha", text: "TooLongSenderId" } } }).length).toBe(1);
    expect(issues({ originators: { "44": { type: "alpha", text: "12345" } } }).length).toBe(1);
    expect(issues({ originators: { "44": { type: "long", text: "abc" } } }).length).toBe(1);
    expect(issues({ originators: { "44": { type: "pigeon", text: "x" } } }).length).toBe(1);
  });
});
