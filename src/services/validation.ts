import type { ResolvedConfig } from "../config/load.js";
import { MatrixError, UnavailableError } from "../core/errors.js";
import { constantTimeEqual, randomDigits, randomToken } from "../crypto/hash.js";
import type { Mailer } from "../delivery/index.js";
import { type BucketRule, bucketRule, enforceLimits, type KeyedRateLimiter } from "../infra/rate-limiter.js";
import type { SessionRecord, SessionRepository } from "../store/validation-sessions.js";
import { normaliseEmail } from "../threepid/email-address.js";
import { parsePhoneNumberFromString } from "../threepid/phone-numbers.js";
import { NextLinkPolicy } from "./next-link.js";

/** Sends phone verification codes; implemented over the configured SMS provider. */
export interface PhoneDelivery {
  /** Whether the operator allows sending to this number's country. */
  allowed(e164: string): boolean;
  /** Sends the code (in `lang` when given); throws on failure. */
  sendCode(e164: string, code: string, lang?: string): Promise<void>;
}

export interface ValidationSettings {
  publicBaseUrl: string;
  sessionLifetimeMs: number;
  maxTokenAttempts: number;
  /** Put the requester's IP address into the verification email (`email.show_requester_ip`). */
  showRequesterIp?: boolean;
  limits: { emailPerAddress: BucketRule; smsPerNumber: BucketRule; smsPerCountry: BucketRule };
}

export interface RequestTokenInput {
  /** Already checked against the spec's format (`[0-9a-zA-Z.=_-]{1,255}`) at the edge. */
  clientSecret: string;
  /** A non-negative integer. */
  sendAttempt: number;
  nextLink?: string | undefined;
  /** The brand of the session's messages and pages (a known brand; undefined: the default). */
  brand?: string | undefined;
  /** The language of the session's messages and pages (a shipped language; undefined: the brand's). */
  lang?: string | undefined;
  /** The requester's IP (for the email template, when `showRequesterIp`). */
  ip?: string | undefined;
}

/** The look of a session's pages: what was stored with it. */
export interface SessionLook {
  lang: string | null;
  brand: string | null;
}

/**
 * M_SESSION_EXPIRED because too many wrong tokens were submitted: the session is closed, not expired
 * (pages say so). Same answer as any M_SESSION_EXPIRED for API clients.
 */
export class SessionClosedError extends MatrixError {
  constructor(readonly attempts: number) {
    super("M_SESSION_EXPIRED", "Too many wrong tokens: this session is closed; request a new one");
  }
}

export interface ValidatedThreepid {
  medium: string;
  address: string;
  validatedAt: number;
}

/** Email and phone validation sessions: request a token, submit it, read the validated 3PID. */
export class ValidationService {
  constructor(
    private readonly settings: ValidationSettings,
    private readonly sessions: SessionRepository,
    private readonly mailer: Mailer,
    private readonly phones: PhoneDelivery,
    private readonly limiter: KeyedRateLimiter,
    private readonly now: () => number = Date.now,
  ) {}

  /** `validate/email/requestToken`: emails a token unless this send_attempt was already handled. */
  async requestEmailToken(email: string, input: RequestTokenInput): Promise<{ sid: string }> {
    const { clientSecret, sendAttempt } = input;
    const address = normaliseEmail(email);
    if (address === null) throw new MatrixError("M_INVALID_EMAIL", "Invalid email address");
    const sid = await this.requestToken(
      "email",
      address,
      clientSecret,
      sendAttempt,
      input,
      async (session) => {
        await enforceLimits(this.limiter, [[`email:${address}`, this.settings.limits.emailPerAddress]]);
        const brand = session.brand ?? undefined;
        const link =
          `${this.settings.publicBaseUrl}/_matrix/identity/v2/validate/email/submitToken` +
          `?sid=${encodeURIComponent(session.sid)}&client_secret=${encodeURIComponent(clientSecret)}` +
          `&token=${encodeURIComponent(session.token)}` +
          (brand ? `&brand=${encodeURIComponent(brand)}` : "");
        try {
          await this.mailer.send({
            template: "verification",
            brand,
            lang: session.lang ?? undefined,
            to: address,
            vars: {
              token: session.token,
              link,
              address,
              ipaddress: this.settings.showRequesterIp ? (input.ip ?? "") : "",
              lifetime_hours: String(Math.max(1, Math.round(this.settings.sessionLifetimeMs / 3_600_000))),
            },
          });
        } catch (err) {
          throw new MatrixError("M_EMAIL_SEND_ERROR", "Failed to send the validation email", { cause: err });
        }
      },
    );
    return { sid };
  }

  /** `validate/msisdn/requestToken`: texts a 6-digit code unless this send_attempt was already handled. */
  async requestMsisdnToken(
    country: string,
    phoneNumber: string,
    input: RequestTokenInput,
  ): Promise<{ sid: string; msisdn: string; intl_fmt: string }> {
    const { clientSecret, sendAttempt } = input;
    if (!/^[A-Za-z]{2}$/.test(country)) {
      throw new MatrixError(
        "M_INVALID_PARAM",
        "country must be an ISO 3166-1 alpha-2 code and phone_number a string",
      );
    }
    if (phoneNumber.length > 64) throw new MatrixError("M_INVALID_ADDRESS", "Invalid phone number");
    const parsed = parsePhoneNumberFromString(phoneNumber, country.toUpperCase() as never);
    if (!parsed?.isValid()) throw new MatrixError("M_INVALID_ADDRESS", "Invalid phone number");
    const e164 = parsed.number;
    const msisdn = e164.slice(1);
    if (!this.phones.allowed(e164)) {
      throw new MatrixError(
        "M_DESTINATION_REJECTED",
        "This server does not send SMS to that country or region",
      );
    }
    const sid = await this.requestToken(
      "msisdn",
      msisdn,
      clientSecret,
      sendAttempt,
      input,
      async (session) => {
        await enforceLimits(this.limiter, [
          [`sms-country:${parsed.countryCallingCode}`, this.settings.limits.smsPerCountry],
          [`sms:${msisdn}`, this.settings.limits.smsPerNumber],
        ]);
        try {
          await this.phones.sendCode(e164, session.token, session.lang ?? undefined);
        } catch (err) {
          throw new MatrixError("M_SEND_ERROR", "Failed to send the SMS", { cause: err });
        }
      },
    );
    return { sid, msisdn, intl_fmt: parsed.formatInternational() };
  }

  /**
   * The send_attempt rule: a live session for (medium, address, client_secret) is reused; a greater
   * send_attempt sends again (same token), an equal or lower one returns the same sid without sending.
   * The session row is claimed before anything is sent, so that concurrent requests (a double click) send
   * one message and share one sid; a send that fails is undone.
   */
  private async requestToken(
    medium: "email" | "msisdn",
    address: string,
    clientSecret: string,
    sendAttempt: number,
    input: RequestTokenInput,
    send: (session: SessionRecord) => Promise<void>,
  ): Promise<string> {
    const now = this.now();
    const nextLink = NextLinkPolicy.sanitize(input.nextLink);
    for (let round = 0; round < 3; round++) {
      const existing = await this.sessions.findByThreepidSecret(medium, address, clientSecret);
      if (existing && this.isLive(existing, now)) {
        if (!(await this.sessions.raiseSendAttempt(existing.sid, sendAttempt, nextLink, now)))
          return existing.sid;
        try {
          await send(existing);
        } catch (err) {
          await this.sessions.restoreSendState(existing.sid, sendAttempt, existing);
          throw err;
        }
        return existing.sid;
      }
      if (existing) await this.sessions.delete(existing.sid);
      const session: SessionRecord = {
        sid: randomToken(24),
        medium,
        address,
        clientSecret,
        token: medium === "email" ? randomToken(32) : randomDigits(6),
        sendAttempt,
        nextLink,
        failedAttempts: 0,
        validatedTs: null,
        createdTs: now,
        mtime: now,
        lang: input.lang ?? null,
        brand: input.brand ?? null,
      };
      if (!(await this.sessions.insertIfAbsent(session))) continue; // another request won: reuse its session
      try {
        await send(session);
      } catch (err) {
        await this.sessions.delete(session.sid);
        throw err;
      }
      return session.sid;
    }
    throw new UnavailableError("busy", "Busy: try again");
  }

  private isLive(s: SessionRecord, now: number): boolean {
    return (
      s.mtime + this.settings.sessionLifetimeMs > now && s.failedAttempts < this.settings.maxTokenAttempts
    );
  }

  /** Finds a session by sid and client_secret (compared in constant time). */
  private async session(sid: string, clientSecret: string): Promise<SessionRecord | undefined> {
    if (sid.length > 255) return undefined;
    const s = await this.sessions.findBySid(sid);
    return s && constantTimeEqual(s.clientSecret, clientSecret) ? s : undefined;
  }

  /**
   * `submitToken`: validates the session. Errors (v1.18): M_INVALID_PARAM (unknown sid or wrong secret),
   * M_SESSION_EXPIRED (too old, or too many wrong tokens), M_TOKEN_INCORRECT. Returns the session's next_link.
   */
  async submitToken(
    sid: string,
    clientSecret: string,
    token: string,
  ): Promise<{ nextLink: string | null } & SessionLook> {
    const s = await this.session(sid, clientSecret);
    if (!s) throw new MatrixError("M_INVALID_PARAM", "Unknown session or wrong client_secret");
    const now = this.now();
    if (s.mtime + this.settings.sessionLifetimeMs <= now)
      throw new MatrixError("M_SESSION_EXPIRED", "Session expired");
    // Every submission uses up an attempt first (atomically), so parallel guesses cannot exceed the limit;
    // the right token gives its attempt back.
    if (!(await this.sessions.takeAttempt(s.sid, this.settings.maxTokenAttempts))) {
      throw new SessionClosedError(this.settings.maxTokenAttempts);
    }
    const given = s.medium === "msisdn" ? token.replace(/\s+/g, "") : token;
    if (!constantTimeEqual(given, s.token)) {
      const left = this.settings.maxTokenAttempts - (s.failedAttempts + 1);
      throw new MatrixError(
        "M_TOKEN_INCORRECT",
        left > 0
          ? `Wrong token (${left} ${left === 1 ? "attempt" : "attempts"} left)`
          : "Wrong token: that was the last attempt, this session is now closed; request a new token",
      );
    }
    await this.sessions.markValidated(s.sid, now);
    return { nextLink: s.nextLink, lang: s.lang ?? null, brand: s.brand ?? null };
  }

  /** The language and brand stored with a session (for its pages); undefined for an unknown session. */
  async sessionLook(sid: string, clientSecret: string): Promise<SessionLook | undefined> {
    const s = await this.session(sid, clientSecret);
    return s && { lang: s.lang ?? null, brand: s.brand ?? null };
  }

  /** `3pid/getValidated3pid`, and the check bind and unbind use: the session must exist, be live and validated. */
  async validatedThreepid(sid: string, clientSecret: string): Promise<ValidatedThreepid> {
    const s = await this.session(sid, clientSecret);
    if (!s)
      throw new MatrixError(
        "M_NO_VALID_SESSION",
        "No valid session was found matching that sid and client secret",
      );
    if (s.mtime + this.settings.sessionLifetimeMs <= this.now()) {
      throw new MatrixError(
        "M_SESSION_EXPIRED",
        "This validation session has expired: call requestToken again",
      );
    }
    if (s.validatedTs === null)
      throw new MatrixError("M_SESSION_NOT_VALIDATED", "This validation session has not been validated");
    return { medium: s.medium, address: s.address, validatedAt: s.validatedTs };
  }

  /** Deletes sessions that can no longer be used (twice the lifetime after their last change). */
  async reap(batch = 1000): Promise<number> {
    return this.sessions.deleteStale(this.now() - 2 * this.settings.sessionLifetimeMs, batch);
  }
}

/** Builds the validation service from `validation.*` and its rate limits. */
export function createValidationService(
  config: Pick<ResolvedConfig, "public_base_url" | "validation" | "rate_limit" | "email">,
  deps: {
    sessions: SessionRepository;
    mailer: Mailer;
    phones: PhoneDelivery;
    limiter: KeyedRateLimiter;
    now: () => number;
  },
): ValidationService {
  const limits = config.rate_limit;
  return new ValidationService(
    {
      publicBaseUrl: config.public_base_url,
      sessionLifetimeMs: config.validation.session_lifetime_seconds * 1000,
      maxTokenAttempts: config.validation.max_token_attempts,
      showRequesterIp: config.email.show_requester_ip,
      limits: {
        emailPerAddress: bucketRule(limits, limits.email_per_address),
        smsPerNumber: bucketRule(limits, limits.sms_per_number),
        smsPerCountry: bucketRule(limits, limits.sms_per_country),
      },
    },
    deps.sessions,
    deps.mailer,
    deps.phones,
    deps.limiter,
    deps.now,
  );
}
