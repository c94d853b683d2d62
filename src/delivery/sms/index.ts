import type { Logger } from "../../core/logger.js";
/**
 * Outgoing SMS (msisdn validation codes). Typical use in `validate/msisdn/requestToken`:
 *
 *   if (!smsDestinationAllowed(cfg.sms, e164)) → 400 M_DESTINATION_REJECTED
 *   await sms.send({ to: e164, body: renderSmsBody(cfg.sms.body_template, token), from: originatorFor(cfg.sms, e164) })
 *     (SmsSendError → 400 M_SEND_ERROR; err.reason/status/providerCode say why)
 */

import type { SmsConfig } from "./config.js";
import { createHttpProvider } from "./http-provider.js";
import { createLogProvider } from "./log-provider.js";
import { createTwilioProvider } from "./twilio.js";
import { type SmsProvider, SmsSendError } from "./types.js";

export { renderSmsBody } from "./body.js";
export {
  type HttpSmsConfig,
  type SmsConfig,
  type SmsConfigInput,
  type SmsCountryRule,
  type SmsOriginator,
  smsConfigSchema,
  type TwilioConfig,
} from "./config.js";
export { SMS_OUTBOX_FILE, type SmsOutboxEntry } from "./log-provider.js";
export { originatorFor, smsDestinationAllowed } from "./rules.js";
export { twilioMessagesUrl } from "./twilio.js";
export {
  isE164,
  type SmsMessage,
  type SmsProvider,
  SmsSendError,
  type SmsSendErrorReason,
} from "./types.js";

/** Builds the configured provider. Throws {@link SmsSendError} `config` if its settings are missing. */
export function createSmsProvider(cfg: SmsConfig, log: Logger): SmsProvider {
  switch (cfg.provider) {
    case "log":
      return createLogProvider(cfg.outbox_dir, log);
    case "twilio":
      if (!cfg.twilio) throw new SmsSendError("sms.provider is twilio but sms.twilio is not set", "config");
      return createTwilioProvider(cfg.twilio, log);
    case "http":
      if (!cfg.http) throw new SmsSendError("sms.provider is http but sms.http is not set", "config");
      return createHttpProvider(cfg.http, log);
    default:
      throw new SmsSendError(`unknown sms.provider ${JSON.stringify(cfg.provider)}`, "config");
  }
}
