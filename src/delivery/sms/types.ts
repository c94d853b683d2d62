/** Shared types of the SMS delivery side: the message, the provider interface, the typed send error. */

export interface SmsMessage {
  /** Destination in E.164 with the leading `+`, e.g. `+447400123456`. */
  to: string;
  /** The complete text (see {@link renderSmsBody}); it contains the validation code, so it is never logged. */
  body: string;
  /** Originator / sender ID (see {@link originatorFor}); when absent the provider's configured default is used. */
  from?: string;
}

export interface SmsProvider {
  /** `log`, `twilio` or `http`. */
  readonly name: string;
  /** Delivers one message to the provider. Rejects with {@link SmsSendError} on any failure. */
  send(msg: SmsMessage): Promise<void>;
  /** Waits for sends in flight (each bounded by its timeout), then releases connections. Further sends fail. */
  close(): Promise<void>;
}

/**
 * - `rejected`: the provider (or our own check) refused this message: bad/unsupported destination, content, etc.
 *   (HTTP 4xx other than the ones below). Retrying the same message will not help.
 * - `unreachable`: network failure, provider-side error or throttling (HTTP 5xx, 408, 429), or the provider is
 *   closed. A later retry may work.
 * - `timeout`: no complete answer within the configured timeout (connect + response).
 * - `bad_response`: an HTTP status that makes no sense for the API (1xx/3xx).
 * - `config`: our side is misconfigured: credentials or URL refused (HTTP 401/403/404/405/407), an unusable
 *   outbox directory, or a provider selected without its settings.
 */
export type SmsSendErrorReason = "rejected" | "unreachable" | "timeout" | "bad_response" | "config";

/**
 * Thrown by {@link SmsProvider.send}. The message never contains the SMS body, credentials or the provider URL.
 * For HTTP providers `status` is the HTTP status and `providerCode` the provider's error code when it sent one
 * (Twilio's numeric `code`, e.g. `21211` invalid `To`, `21408` region not enabled, `21610` unsubscribed).
 */
export class SmsSendError extends Error {
  override name = "SmsSendError";
  readonly reason: SmsSendErrorReason;
  readonly status?: number;
  readonly providerCode?: string;
  constructor(
    message: string,
    reason: SmsSendErrorReason,
    options?: { cause?: unknown; status?: number; providerCode?: string },
  ) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.reason = reason;
    if (options?.status !== undefined) this.status = options.status;
    if (options?.providerCode !== undefined) this.providerCode = options.providerCode;
  }
}

const E164 = /^\+[1-9]\d{1,14}$/;

/** Strict E.164 syntax check (`+` and 2–15 digits); providers refuse anything else before any I/O. */
export function isE164(s: string): boolean {
  return E164.test(s);
}
