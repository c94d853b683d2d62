import {
  originatorFor,
  renderSmsBody,
  type SmsConfig,
  type SmsProvider,
  smsDestinationAllowed,
} from "./index.js";

/** `sms.body_template`'s default (sydent's). */
export const DEFAULT_SMS_BODY = "Your code is {token}";

/** Sends validation codes by SMS: the operator's country rules, sender IDs and body template. */
export class SmsCodeSender {
  /**
   * `localise` gives the body in a language (the `sms.body` message of the catalogues); it is used
   * while `body_template` is left at its default, so that an operator's own text always wins.
   */
  constructor(
    private readonly cfg: SmsConfig,
    private readonly provider: SmsProvider,
    private readonly localise?: (lang: string | undefined, code: string) => string,
  ) {}

  allowed(e164: string): boolean {
    return smsDestinationAllowed(this.cfg, e164);
  }

  async sendCode(e164: string, code: string, lang?: string): Promise<void> {
    const from = originatorFor(this.cfg, e164);
    const body =
      this.localise && this.cfg.body_template === DEFAULT_SMS_BODY
        ? this.localise(lang, code)
        : renderSmsBody(this.cfg.body_template, code);
    await this.provider.send({
      to: e164,
      body,
      ...(from ? { from } : {}),
    });
  }

  close(): Promise<void> {
    return this.provider.close();
  }
}
