import { describe, expect, it } from "vitest";
import { resolveConfig } from "./load.js";
import { configWarnings } from "./warnings.js";

const keys = (tree: Record<string, unknown>) => configWarnings(resolveConfig(tree)).map((w) => w.key);

describe("configWarnings", () => {
  it("says nothing about the defaults or a careful production config", () => {
    expect(keys({})).toEqual([]);
    expect(
      keys({
        public_base_url: "https://id.example.org",
        email: { smtp: { host: "smtp.example.org", tls: "starttls", username: "u", password: "p" } },
        sms: { provider: "http", http: { url: "https://sms.example.org/send", bearer_token: "t" } },
      }),
    ).toEqual([]);
  });

  it("warns about SMTP credentials without TLS", () => {
    expect(keys({ email: { smtp: { host: "smtp.example.org", tls: "none", username: "u" } } })).toEqual([
      "email.smtp.tls",
    ]);
    expect(keys({ email: { smtp: { host: "smtp.example.org", tls: "none" } } })).toEqual([]);
  });

  it("warns about an http:// SMS webhook with credentials (a token or a user in the URL)", () => {
    expect(
      keys({ sms: { provider: "http", http: { url: "http://sms.example.org/", bearer_token: "t" } } }),
    ).toEqual(["sms.http.url"]);
    expect(keys({ sms: { provider: "http", http: { url: "http://u:p@sms.example.org/" } } })).toEqual([
      "sms.http.url",
    ]);
    expect(keys({ sms: { provider: "http", http: { url: "http://sms.example.org/" } } })).toEqual([]);
  });

  it("warns about unchecked federation certificates and a public URL that is not https", () => {
    expect(keys({ federation: { verify_certificates: false } })).toEqual(["federation.verify_certificates"]);
    expect(keys({ public_base_url: "http://id.example.org" })).toEqual(["public_base_url"]);
    expect(keys({ public_base_url: "http://127.0.0.1:8090" })).toEqual([]);
  });
});
