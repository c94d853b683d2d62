/** SMS provider: a dry request where the provider has one (Twilio: fetch the account), Redis when configured. */
import { accessSync, constants, existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Redis } from "ioredis";
import type { ResolvedConfig } from "../config/load.js";
import { safeUrl } from "./database.js";
import { errorText, type Report } from "./report.js";

const TIMEOUT_MS = 10_000;

export async function checkSms(cfg: ResolvedConfig, report: Report): Promise<void> {
  const g = report.group("sms");
  const sms = cfg.sms;
  if (sms.provider === "log") {
    const file = resolve(sms.outbox_dir, "sms.log");
    g.warn(
      "provider",
      `"log": codes are written to ${file}, no phone receives them`,
      "set sms.provider: twilio (or http) in production, or v2 phone validation cannot work",
    );
    let dir = dirname(file);
    while (!existsSync(dir)) dir = dirname(dir);
    try {
      accessSync(dir, constants.W_OK);
    } catch {
      g.fail("outbox writable", `${dir} is not writable`, `make ${dir} writable by the user running Seraph`);
    }
    return;
  }
  if (sms.provider === "http") {
    const url = new URL(sms.http!.url);
    g.pass(
      "provider",
      `http webhook ${url.origin}${url.pathname} (not contacted: a webhook has no dry request)`,
    );
    if (url.protocol !== "https:")
      g.warn(
        "https",
        `${url.origin} is plain http: codes cross the network in clear text`,
        "use an https:// URL",
      );
    return;
  }
  const tw = sms.twilio!;
  if (tw.from === undefined && tw.messaging_service_sid === undefined && !sms.originators.default) {
    g.fail(
      "sender",
      "neither sms.twilio.from nor sms.twilio.messaging_service_sid is set",
      "set sms.twilio.from (a Twilio number or sender ID) or sms.twilio.messaging_service_sid",
    );
  }
  // GET the account resource: Twilio's way to check credentials without sending anything.
  const url = `${tw.api_base_url.replace(/\/+$/, "")}/2010-04-01/Accounts/${encodeURIComponent(tw.account_sid)}.json`;
  try {
    const res = await fetch(url, {
      headers: {
        authorization: `Basic ${Buffer.from(`${tw.account_sid}:${tw.auth_token}`).toString("base64")}`,
        accept: "application/json",
      },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const body = (await res.json().catch(() => ({}))) as { status?: unknown };
    if (res.status === 200) {
      const status = typeof body.status === "string" ? body.status : undefined;
      if (status === undefined || status === "active")
        g.pass(
          "credentials",
          `Twilio accepted account ${tw.account_sid.slice(0, 6)}…${status ? " (active)" : ""}`,
        );
      else
        g.fail(
          "credentials",
          `Twilio account status is "${status}"`,
          "reactivate the Twilio account (suspended or closed accounts cannot send)",
        );
    } else if (res.status === 401 || res.status === 403 || res.status === 404) {
      g.fail(
        "credentials",
        `Twilio refused the credentials (${res.status})`,
        "check sms.twilio.account_sid and sms.twilio.auth_token (Twilio console → Account info)",
      );
    } else {
      g.fail("credentials", `Twilio answered ${res.status}`, "retry later; see status.twilio.com");
    }
  } catch (e) {
    g.fail(
      "credentials",
      `${new URL(url).origin}: ${errorText((e as { cause?: unknown }).cause ?? e)}`,
      "this machine must reach the Twilio API over HTTPS (proxy, firewall, DNS)",
    );
  }
}

export async function checkRedis(cfg: ResolvedConfig, report: Report): Promise<void> {
  const redisUrl = cfg.rate_limit.redis_url;
  if (!redisUrl) return;
  const g = report.group("redis");
  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: TIMEOUT_MS,
    retryStrategy: () => null,
  });
  redis.on("error", () => {});
  try {
    await redis.connect();
    const pong = await redis.ping();
    g.pass("reachable", `${safeUrl(redisUrl)}: PING → ${pong}`);
  } catch (e) {
    g.fail(
      "reachable",
      `${safeUrl(redisUrl)}: ${errorText(e)}`,
      "start Redis or correct rate_limit.redis_url; while it is away, shared rate limits fail open",
    );
  } finally {
    redis.disconnect();
  }
}
