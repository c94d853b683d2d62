import type { Logger } from "../../core/logger.js";
/**
 * Generic webhook for any other gateway (SNS, Infobip, an in-house relay…): `POST <url>` with JSON
 * `{"to": "+4474…", "body": "…", "from"?: "…"}` and `Authorization: Bearer <bearer_token>` when configured.
 * 2xx means accepted. A refusal of the message should be a 4xx such as 400 or 422; 401/403/404/405 are read as
 * our misconfiguration, 408/429/5xx as temporary. An error JSON `{"error"|"message": "…", "code"?: …}` is
 * quoted in the error.
 */
import type { HttpSmsConfig } from "./config.js";
import { cleanText, createAgent, postWithDeadline, reasonForStatus, SendTracker } from "./http-client.js";
import { isE164, type SmsMessage, type SmsProvider, SmsSendError } from "./types.js";

export function createHttpProvider(cfg: HttpSmsConfig, log: Logger): SmsProvider {
  const url = new URL(cfg.url);
  const secrets = [cfg.bearer_token ?? ""];
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json",
    "user-agent": "Seraph",
    ...(cfg.bearer_token !== undefined ? { authorization: `Bearer ${cfg.bearer_token}` } : {}),
  };
  const agent = createAgent(cfg.timeout_ms);
  const tracker = new SendTracker("SMS provider 'http'");
  if (cfg.bearer_token !== undefined && url.protocol !== "https:") {
    log.warn({ provider: "http", host: url.host }, "SMS webhook bearer token is sent over plain http");
  }

  async function deliver(msg: SmsMessage): Promise<void> {
    if (!isE164(msg.to)) throw new SmsSendError("invalid destination number (not E.164)", "rejected");
    const payload = JSON.stringify({
      to: msg.to,
      body: msg.body,
      ...(msg.from !== undefined ? { from: msg.from } : {}),
    });
    let answer: Awaited<ReturnType<typeof postWithDeadline>>;
    try {
      answer = await postWithDeadline(agent, url, headers, payload, cfg.timeout_ms, "SMS webhook");
    } catch (err) {
      const e = err as SmsSendError;
      log.warn({ provider: "http", to: msg.to, reason: e.reason, error: e.message }, "SMS send failed");
      throw err;
    }
    const reason = reasonForStatus(answer.status);
    if (reason === undefined) {
      log.info({ provider: "http", to: msg.to, from: msg.from }, "SMS accepted by provider");
      return;
    }
    const j = (answer.json ?? {}) as {
      error?: unknown;
      message?: unknown;
      code?: unknown;
      errcode?: unknown;
    };
    const rawText = [j.error, j.message].find((v): v is string => typeof v === "string");
    const text = rawText !== undefined ? cleanText(rawText, secrets) : undefined;
    const rawCode = j.code ?? j.errcode;
    const code =
      typeof rawCode === "string" || typeof rawCode === "number"
        ? cleanText(String(rawCode), secrets)
        : undefined;
    const details = [`HTTP ${answer.status}`, code && `code ${code}`, text].filter(Boolean).join(", ");
    const lead =
      reason === "rejected"
        ? "SMS webhook rejected the message"
        : reason === "config"
          ? "SMS webhook refused our credentials or URL"
          : reason === "unreachable"
            ? "SMS webhook is unavailable"
            : "unexpected answer from the SMS webhook";
    log.warn(
      { provider: "http", to: msg.to, reason, status: answer.status, code, error: text },
      "SMS send failed",
    );
    throw new SmsSendError(`${lead} (${details})`, reason, {
      status: answer.status,
      ...(code !== undefined ? { providerCode: code } : {}),
    });
  }

  return {
    name: "http",
    send: (msg) => tracker.run(() => deliver(msg)),
    async close() {
      await tracker.close();
      await agent.close();
    },
  };
}
