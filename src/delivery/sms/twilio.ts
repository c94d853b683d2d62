import type { Logger } from "../../core/logger.js";
/**
 * Twilio Programmable Messaging: `POST {api_base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`,
 * form-encoded `To`, `From` and/or `MessagingServiceSid`, `Body`, HTTP Basic `account_sid:auth_token`.
 */
import type { TwilioConfig } from "./config.js";
import { cleanText, createAgent, postWithDeadline, reasonForStatus, SendTracker } from "./http-client.js";
import { isE164, type SmsMessage, type SmsProvider, SmsSendError } from "./types.js";

export function twilioMessagesUrl(cfg: Pick<TwilioConfig, "api_base_url" | "account_sid">): URL {
  const base = cfg.api_base_url.replace(/\/+$/, "");
  return new URL(`${base}/2010-04-01/Accounts/${encodeURIComponent(cfg.account_sid)}/Messages.json`);
}

export function createTwilioProvider(cfg: TwilioConfig, log: Logger): SmsProvider {
  const url = twilioMessagesUrl(cfg);
  const authorization = `Basic ${Buffer.from(`${cfg.account_sid}:${cfg.auth_token}`).toString("base64")}`;
  const secrets = [cfg.auth_token, cfg.account_sid];
  const agent = createAgent(cfg.timeout_ms);
  const tracker = new SendTracker("SMS provider 'twilio'");

  async function deliver(msg: SmsMessage): Promise<void> {
    if (!isE164(msg.to)) throw new SmsSendError("invalid destination number (not E.164)", "rejected");
    const from = msg.from ?? cfg.from;
    const form = new URLSearchParams();
    form.set("To", msg.to);
    if (from !== undefined) form.set("From", from);
    if (cfg.messaging_service_sid !== undefined) form.set("MessagingServiceSid", cfg.messaging_service_sid);
    if (from === undefined && cfg.messaging_service_sid === undefined) {
      throw new SmsSendError("Twilio needs twilio.from or twilio.messaging_service_sid", "config");
    }
    form.set("Body", msg.body);

    let answer: Awaited<ReturnType<typeof postWithDeadline>>;
    try {
      answer = await postWithDeadline(
        agent,
        url,
        {
          authorization,
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
          "user-agent": "Seraph",
        },
        form.toString(),
        cfg.timeout_ms,
        "Twilio",
      );
    } catch (err) {
      const e = err as SmsSendError;
      log.warn({ provider: "twilio", to: msg.to, reason: e.reason, error: e.message }, "SMS send failed");
      throw err;
    }

    const reason = reasonForStatus(answer.status);
    const j = (answer.json ?? {}) as { sid?: unknown; code?: unknown; message?: unknown };
    if (reason === undefined) {
      log.info(
        { provider: "twilio", to: msg.to, from, sid: typeof j.sid === "string" ? j.sid : undefined },
        "SMS accepted by provider",
      );
      return;
    }
    const code = typeof j.code === "number" || typeof j.code === "string" ? String(j.code) : undefined;
    const text = typeof j.message === "string" ? cleanText(j.message, secrets) : undefined;
    const details = [`HTTP ${answer.status}`, code && `code ${code}`, text].filter(Boolean).join(", ");
    const lead =
      reason === "rejected"
        ? "Twilio rejected the message"
        : reason === "config"
          ? "Twilio refused our credentials or URL"
          : reason === "unreachable"
            ? "Twilio is unavailable"
            : "unexpected answer from Twilio";
    log.warn(
      { provider: "twilio", to: msg.to, reason, status: answer.status, code, error: text },
      "SMS send failed",
    );
    throw new SmsSendError(`${lead} (${details})`, reason, {
      status: answer.status,
      ...(code !== undefined ? { providerCode: code } : {}),
    });
  }

  return {
    name: "twilio",
    send: (msg) => tracker.run(() => deliver(msg)),
    async close() {
      await tracker.close();
      await agent.close();
    },
  };
}
