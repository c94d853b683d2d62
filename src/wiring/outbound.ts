import type { ResolvedConfig } from "../config/load.js";
import type { Logger } from "../core/logger.js";
import { Presentation } from "../delivery/brands.js";
import { createMailer, type Mailer } from "../delivery/index.js";
import { createSmsProvider, type SmsProvider } from "../delivery/sms/index.js";
import { SmsCodeSender } from "../delivery/sms/phone-codes.js";
import { HomeserverClient } from "../federation/index.js";
import { countedMailer, countedSms, type Metrics } from "../infra/metrics.js";

/** Everything Seraph sends out of the machine: mail, SMS, requests to homeservers (counted for /metrics). */
export interface Outbound {
  /** Brands and languages of mails and pages (`email.brands`, templates/locales). */
  presentation: Presentation;
  mailer: Mailer;
  sms: SmsCodeSender;
  homeservers: HomeserverClient;
  close(): Promise<void>;
}

/** Builds the outbound adapters from `email`, `sms` and `federation`; tests may pass their own. */
export function createOutbound(
  config: ResolvedConfig,
  log: Logger,
  metrics: Metrics,
  given: {
    mailer?: Mailer | undefined;
    sms?: SmsProvider | undefined;
    homeservers?: HomeserverClient | undefined;
  },
): Outbound {
  const presentation = new Presentation({
    templatesDir: config.email.templates_dir,
    defaultBrand: config.email.default_brand,
    brands: config.email.brands,
  });
  for (const w of presentation.contrastWarnings()) {
    log.warn(w, "brand colours below a contrast of 4.5:1: some text of emails and pages is hard to read");
  }
  const mailer = countedMailer(given.mailer ?? createMailer(config.email, log, presentation), metrics);
  const sms = new SmsCodeSender(
    config.sms,
    countedSms(given.sms ?? createSmsProvider(config.sms, log), metrics),
    (lang, code) =>
      presentation.t(lang ?? presentation.brand(undefined).default_language, "sms.body", { token: code }),
  );
  const f = config.federation;
  const homeservers =
    given.homeservers ??
    new HomeserverClient({
      ipAllowlist: f.ip_allowlist,
      ipDenylist: f.ip_denylist,
      verifyCertificates: f.verify_certificates,
      connectTimeoutMs: f.connect_timeout_ms,
      requestTimeoutMs: f.request_timeout_ms,
      logger: log,
      userAgent: "Seraph",
    });
  return {
    presentation,
    mailer,
    sms,
    homeservers,
    async close() {
      await mailer.close();
      await sms.close();
      if (!given.homeservers) await homeservers.close();
    },
  };
}
