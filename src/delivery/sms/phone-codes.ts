import {
  originatorFor,
  renderSmsBody,
  type SmsConfig,
  type SmsProvider,
  smsDestinationAllowed,
} from "./index.js";

/** Sends validation codes by SMS: the operator's country rules, sender IDs and body template. */
export class SmsCodeSender {
  constructor(
    private readonly cfg: SmsConfig,
    private readonly provider: SmsProvider,
  ) {}

  allowed(e164: string): boolean {
    return smsDestinationAllowed(this.cfg, e164);
  }

  async sendCode(e164: string, code: string): Promise<void> {
    const from = originatorFor(this.cfg, e164);
    await this.provider.send({
      to: e164,
      body: renderSmsBody(this.cfg.body_template, code),
      ...(from ? { from } : {}),
    });
  }

  close(): Promise<void> {
    return this.provider.close();
  }
}
