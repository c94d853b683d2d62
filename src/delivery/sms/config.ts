/**
 * The `sms:` section of the configuration file.
 *
 * Differences from sydent's `[sms]` section:
 * - `bodyTemplate` → `body_template`, same `{token}` placeholder (and `{{`/`}}` escapes, like Python's format).
 * - `originators.<cc>` → `originators: { "<cc>": {type, text} }`, keyed by country calling code (`"44"`, `"1"`)
 *   or `"default"`, exactly like sydent. One originator per key (sydent allows a list and picks one by digit sum).
 * - `smsrule.<cc>` → `country_rules`, **keyed by ISO 3166-1 alpha-2 region (`"GB"`, `"US"`), not by calling
 *   code**: a calling code can cover many countries (`1` = US, CA and the Caribbean). The region of a number is
 *   libphonenumber's (`+1 613…` is `CA`). Sydent's `smsrule.1 = reject` therefore becomes a `reject` for each
 *   region of calling code 1 you mean, or `default_country_rule: reject` plus an allow-list.
 * - OpenMarket `username`/`password` → a provider: `log` (development), `twilio`, or a generic JSON `http` webhook.
 * - The per-number and per-country rate limits are not part of this section (the API layer applies them).
 */

import { z } from "zod";
import { isSupportedCountry } from "../../threepid/phone-numbers.js";
import { renderSmsBody } from "./body.js";

export type SmsCountryRule = "allow" | "reject";

export interface SmsOriginator {
  /** `long`: a phone number (normalised to E.164 with `+`); `short`: a short code; `alpha`: an alphanumeric ID. */
  type: "long" | "short" | "alpha";
  text: string;
}

export interface TwilioConfig {
  account_sid: string;
  auth_token: string;
  /** Default sender when no originator applies: a Twilio number, short code or alphanumeric sender ID. */
  from?: string;
  /** A Messaging Service (`MG…`); sent in addition to `From` when both are known. */
  messaging_service_sid?: string;
  /** Default `https://api.twilio.com`. Plain `http` is accepted only for loopback hosts (tests). */
  api_base_url: string;
  /** Whole-request deadline (connect, headers, body). Default 10000. */
  timeout_ms: number;
}

export interface HttpSmsConfig {
  /** Receives `POST {"to","body","from"?}` as JSON. 2xx = accepted; answer 4xx (e.g. 400/422) to refuse a number. */
  url: string;
  /** Sent as `Authorization: Bearer <token>` when set. */
  bearer_token?: string;
  /** Whole-request deadline (connect, headers, body). Default 10000. */
  timeout_ms: number;
}

export interface SmsConfig {
  /** Default `log`. */
  provider: "log" | "twilio" | "http";
  /** Default `Your code is {token}`. Must contain `{token}`. */
  body_template: string;
  /** `log` provider: append each SMS as a JSON line `{ts,to,from,body}` to `<outbox_dir>/sms.log` (mode 0600). */
  outbox_dir?: string;
  twilio?: TwilioConfig;
  http?: HttpSmsConfig;
  /** Country calling code (`"44"`) or `"default"` → originator. Default `{}`. */
  originators: Record<string, SmsOriginator>;
  /** ISO 3166-1 alpha-2 region (`"GB"`; normalised to upper case by the schema) → rule. Default `{}`. */
  country_rules: Record<string, SmsCountryRule>;
  /** Rule for regions not in `country_rules` and for non-geographic numbers (`+800…`). Default `allow`. */
  default_country_rule: SmsCountryRule;
}

const timeoutMs = z.number().int().min(1).max(120_000).default(10_000);
const httpUrl = z.url({ protocol: /^https?$/ });

function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === "localhost" || h === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

const ruleSchema = z.enum(["allow", "reject"]);

const originatorSchema = z.discriminatedUnion("type", [
  z
    .object({
      type: z.literal("long"),
      text: z
        .string()
        .regex(/^\+?[1-9]\d{6,14}$/, "a long originator is a phone number: optional + and 7-15 digits")
        .transform((t) => (t.startsWith("+") ? t : `+${t}`)),
    })
    .strict(),
  z
    .object({
      type: z.literal("short"),
      text: z.string().regex(/^\d{3,8}$/, "a short originator is a short code of 3-8 digits"),
    })
    .strict(),
  z
    .object({
      type: z.literal("alpha"),
      text: z
        .string()
        .regex(
          /^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/,
          "an alpha originator is 1-11 ASCII letters, digits or spaces, with at least one letter",
        ),
    })
    .strict(),
]);

const twilioSchema = z
  .object({
    account_sid: z
      .string()
      .regex(/^AC[0-9a-fA-F]{32}$/, "a Twilio Account SID is AC followed by 32 hex digits"),
    auth_token: z.string().min(1),
    from: z.string().min(1).optional(),
    messaging_service_sid: z
      .string()
      .regex(/^MG[0-9a-fA-F]{32}$/, "a Messaging Service SID is MG followed by 32 hex digits")
      .optional(),
    api_base_url: httpUrl.default("https://api.twilio.com"),
    timeout_ms: timeoutMs,
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.from === undefined && t.messaging_service_sid === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["from"],
        message: "set `from` or `messaging_service_sid` (Twilio needs a sender)",
      });
    }
    const u = new URL(t.api_base_url);
    if (u.protocol !== "https:" && !isLoopbackHost(u.hostname)) {
      ctx.addIssue({
        code: "custom",
        path: ["api_base_url"],
        message: "must be https (it carries the auth token); plain http is allowed only for loopback hosts",
      });
    }
    if (u.username || u.password) {
      ctx.addIssue({ code: "custom", path: ["api_base_url"], message: "must not contain credentials" });
    }
  });

const httpSchema = z
  .object({
    url: httpUrl,
    bearer_token: z.string().min(1).optional(),
    timeout_ms: timeoutMs,
  })
  .strict();

/** Keys are matched case-insensitively (env overrides lower-case them) and normalised to upper case. */
const countryRulesSchema = z
  .record(z.string(), ruleSchema)
  .superRefine((rules, ctx) => {
    const seen = new Map<string, string>();
    for (const [k, rule] of Object.entries(rules)) {
      const up = k.toUpperCase();
      if (!/^[A-Z]{2}$/.test(up) || !isSupportedCountry(up)) {
        const hint =
          up === "UK"
            ? " (the United Kingdom is GB)"
            : /^\d+$/.test(k)
              ? " (keys are regions, not calling codes)"
              : "";
        ctx.addIssue({
          code: "custom",
          path: [k],
          message: `not an ISO 3166-1 alpha-2 region such as "GB"${hint}`,
        });
      } else if (seen.has(up) && seen.get(up) !== rule) {
        ctx.addIssue({ code: "custom", path: [k], message: `conflicting rules for ${up}` });
      }
      seen.set(up, rule);
    }
  })
  .transform((rules) => {
    const out: Record<string, SmsCountryRule> = {};
    for (const [k, rule] of Object.entries(rules)) out[k.toUpperCase()] = rule;
    return out;
  });

const callingCodeKey = z
  .string()
  .regex(/^(default|[1-9]\d{0,2})$/, 'originators keys are country calling codes ("44", "1") or "default"');

const smsObjectSchema = z
  .object({
    provider: z.enum(["log", "twilio", "http"]).default("log"),
    body_template: z
      .string()
      .min(1)
      .max(1600)
      .default("Your code is {token}")
      .refine((t) => renderSmsBody(t, "\u0000").includes("\u0000"), {
        message: "body_template must contain the {token} placeholder",
      }),
    outbox_dir: z.string().min(1).optional(),
    twilio: twilioSchema.optional(),
    http: httpSchema.optional(),
    originators: z.record(callingCodeKey, originatorSchema).default({}),
    country_rules: countryRulesSchema.default({}),
    default_country_rule: ruleSchema.default("allow"),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.provider === "twilio" && !c.twilio) {
      ctx.addIssue({
        code: "custom",
        path: ["twilio"],
        message: "provider is twilio but `twilio` is not set",
      });
    }
    if (c.provider === "http" && !c.http) {
      ctx.addIssue({ code: "custom", path: ["http"], message: "provider is http but `http` is not set" });
    }
  });

/**
 * Zod schema of the `sms:` section. Absent or `{}` parses to all defaults (`.prefault({})` is applied here), so
 * it can be mounted directly as `sms: smsConfigSchema` in the main config schema.
 */
export const smsConfigSchema = smsObjectSchema.prefault({});

/** What the config file may contain (defaults not yet applied). */
export type SmsConfigInput = z.input<typeof smsConfigSchema>;

// Compile-time check that the schema's output fits the documented interface.
type Assert<T extends true> = T;
export type _SmsSchemaMatchesInterface = Assert<
  z.output<typeof smsConfigSchema> extends SmsConfig ? true : false
>;
