import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MatrixError } from "../core/errors.js";
import { EmailSendError, type Mailer, type OutgoingEmail } from "../delivery/index.js";
import { MemoryRateLimiter } from "../infra/rate-limiter.js";
import { migrateToLatest, openStore, type Store } from "../store/database.js";
import {
  type PhoneDelivery,
  type RequestTokenInput,
  ValidationService,
  type ValidationSettings,
} from "./validation.js";

const HOUR = 3_600_000;
const LIFETIME = 24 * HOUR;
const MAX_ATTEMPTS = 3;

/** Mail leaves the machine: this fake keeps what would have been sent and can be told to fail. */
class CapturingMailer implements Mailer {
  readonly sent: OutgoingEmail[] = [];
  failures = 0;
  /** When set, sends wait for it (to hold a send in flight). */
  gate: Promise<void> | null = null;

  async send(mail: OutgoingEmail): Promise<void> {
    if (this.gate) await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw new EmailSendError("SMTP server refused the message", "delivery");
    }
    this.sent.push(mail);
  }

  async close(): Promise<void> {}

  get last(): OutgoingEmail {
    const mail = this.sent.at(-1);
    if (!mail) throw new Error("no mail sent");
    return mail;
  }
}

/** SMS leaves the machine too. */
class CapturingPhones implements PhoneDelivery {
  readonly sent: Array<{ to: string; code: string }> = [];
  refused = new Set<string>();
  failures = 0;

  allowed(e164: string): boolean {
    return !this.refused.has(e164);
  }

  async sendCode(e164: string, code: string): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      throw new Error("gateway answered 500");
    }
    this.sent.push({ to: e164, code });
  }
}

const settings: ValidationSettings = {
  publicBaseUrl: "https://id.example.org",
  sessionLifetimeMs: LIFETIME,
  maxTokenAttempts: MAX_ATTEMPTS,
  limits: {
    emailPerAddress: { burst: 3, perHour: 12 },
    smsPerNumber: { burst: 3, perHour: 12 },
    smsPerCountry: { burst: 1000, perHour: 1000 },
  },
};

let store: Store;
let clock: number;
let mailer: CapturingMailer;
let phones: CapturingPhones;
let service: ValidationService;

beforeEach(async () => {
  store = await openStore({ sqlite: { path: ":memory:" } });
  await migrateToLatest(store);
  clock = Date.UTC(2026, 0, 1);
  mailer = new CapturingMailer();
  phones = new CapturingPhones();
  const now = () => clock;
  service = new ValidationService(
    settings,
    store.repos.sessions,
    mailer,
    phones,
    new MemoryRateLimiter(now),
    now,
  );
});
afterEach(async () => store?.close());

const input = (clientSecret: string, sendAttempt: number, extra: Partial<RequestTokenInput> = {}) => ({
  clientSecret,
  sendAttempt,
  ...extra,
});

/** The MatrixError a promise rejects with (fails the test if it resolves or throws anything else). */
async function matrixError(p: Promise<unknown>): Promise<MatrixError> {
  const err = await p.then(
    () => undefined,
    (e: Error) => e,
  );
  expect(err).toBeInstanceOf(MatrixError);
  return err as MatrixError;
}

async function errcode(p: Promise<unknown>): Promise<string> {
  return (await matrixError(p)).errcode;
}

describe("requestToken: the send_attempt rule", () => {
  it("returns the same sid without sending for the same or a lower send_attempt, and resends the same token for a higher one", async () => {
    const { sid } = await service.requestEmailToken("alice@example.org", input("secret-1", 1));
    expect(mailer.sent).toHaveLength(1);
    const first = mailer.last;
    expect(first.to).toBe("alice@example.org");
    expect(first.template).toBe("verification");
    expect(first.vars.token).toMatch(/^[0-9A-Za-z]{32}$/);
    expect(first.vars.link).toBe(
      `https://id.example.org/_matrix/identity/v2/validate/email/submitToken?sid=${sid}` +
        `&client_secret=secret-1&token=${first.vars.token}`,
    );

    expect(await service.requestEmailToken("alice@example.org", input("secret-1", 1))).toEqual({ sid });
    expect(await service.requestEmailToken("alice@example.org", input("secret-1", 0))).toEqual({ sid });
    expect(mailer.sent).toHaveLength(1);

    expect(await service.requestEmailToken("alice@example.org", input("secret-1", 2))).toEqual({ sid });
    expect(mailer.sent).toHaveLength(2);
    expect(mailer.last.vars.token).toBe(first.vars.token);
    expect(mailer.last.vars.link).toBe(first.vars.link);

    expect(await service.requestEmailToken("alice@example.org", input("secret-1", 2))).toEqual({ sid });
    expect(await service.requestEmailToken("alice@example.org", input("secret-1", 1))).toEqual({ sid });
    expect(mailer.sent).toHaveLength(2);
    expect((await store.repos.sessions.findBySid(sid))?.sendAttempt).toBe(2);
  });

  it("keys sessions on the normalised address", async () => {
    const { sid } = await service.requestEmailToken("Alice@Example.ORG", input("secret-1", 1));
    expect(mailer.last.to).toBe("alice@example.org");
    expect(await service.requestEmailToken("alice@example.org", input("secret-1", 1))).toEqual({ sid });
    expect(mailer.sent).toHaveLength(1);
  });

  it("gives a different client_secret a new session with its own token", async () => {
    const a = await service.requestEmailToken("alice@example.org", input("secret-a", 1));
    const tokenA = mailer.last.vars.token!;
    const b = await service.requestEmailToken("alice@example.org", input("secret-b", 1));
    const tokenB = mailer.last.vars.token!;
    expect(b.sid).not.toBe(a.sid);
    expect(tokenB).not.toBe(tokenA);
    expect(mailer.sent).toHaveLength(2);
    // Each session accepts only its own token and its own secret.
    expect(await errcode(service.submitToken(b.sid, "secret-b", tokenA))).toBe("M_TOKEN_INCORRECT");
    expect(await errcode(service.submitToken(b.sid, "secret-a", tokenB))).toBe("M_INVALID_PARAM");
    await service.submitToken(b.sid, "secret-b", tokenB);
    expect(await errcode(service.validatedThreepid(a.sid, "secret-a"))).toBe("M_SESSION_NOT_VALIDATED");
    expect((await service.validatedThreepid(b.sid, "secret-b")).address).toBe("alice@example.org");
  });

  it("sends one message and shares one sid when the same request arrives twice at once", async () => {
    let release = () => {};
    mailer.gate = new Promise<void>((r) => {
      release = r;
    });
    const both = Promise.all([
      service.requestEmailToken("alice@example.org", input("secret-1", 1)),
      service.requestEmailToken("alice@example.org", input("secret-1", 1)),
    ]);
    await new Promise((r) => setTimeout(r, 50));
    release();
    const [a, b] = await both;
    expect(a.sid).toBe(b.sid);
    expect(mailer.sent).toHaveLength(1);
  });

  it("rejects an invalid email address before creating a session", async () => {
    expect(await errcode(service.requestEmailToken("not an address", input("secret-1", 1)))).toBe(
      "M_INVALID_EMAIL",
    );
    expect(await errcode(service.requestEmailToken("a@b@example.org", input("secret-1", 1)))).toBe(
      "M_INVALID_EMAIL",
    );
    expect(mailer.sent).toHaveLength(0);
    expect(await store.db.selectFrom("validation_sessions").selectAll().execute()).toHaveLength(0);
  });

  it("stores only an http(s) next_link and returns it on submitToken", async () => {
    const ok = await service.requestEmailToken(
      "alice@example.org",
      input("secret-1", 1, { nextLink: "https://app.example.org/done?x=1" }),
    );
    expect(await service.submitToken(ok.sid, "secret-1", mailer.last.vars.token!)).toMatchObject({
      nextLink: "https://app.example.org/done?x=1",
    });
    const bad = await service.requestEmailToken(
      "bob@example.org",
      input("secret-1", 1, { nextLink: "javascript:alert(1)" }),
    );
    expect(await service.submitToken(bad.sid, "secret-1", mailer.last.vars.token!)).toMatchObject({
      nextLink: null,
    });
  });
});

describe("submitToken", () => {
  async function emailSession(address = "alice@example.org", secret = "secret-1") {
    const { sid } = await service.requestEmailToken(address, input(secret, 1));
    return { sid, secret, token: mailer.last.vars.token! };
  }

  it("answers M_TOKEN_INCORRECT for a wrong token, then M_SESSION_EXPIRED after max attempts even with the right token", async () => {
    const s = await emailSession();
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const err = await matrixError(service.submitToken(s.sid, s.secret, `wrong-${i}`));
      expect(err.errcode).toBe("M_TOKEN_INCORRECT");
      expect(err.status).toBe(400);
    }
    expect(await errcode(service.submitToken(s.sid, s.secret, s.token))).toBe("M_SESSION_EXPIRED");
    expect(await errcode(service.submitToken(s.sid, s.secret, s.token))).toBe("M_SESSION_EXPIRED");
    expect(await errcode(service.validatedThreepid(s.sid, s.secret))).toBe("M_SESSION_NOT_VALIDATED");
    // The used-up session is not reused: the same secret starts a new one (and sends a new token).
    const again = await service.requestEmailToken("alice@example.org", input(s.secret, 1));
    expect(again.sid).not.toBe(s.sid);
    expect(mailer.sent).toHaveLength(2);
    expect(mailer.last.vars.token).not.toBe(s.token);
    await service.submitToken(again.sid, s.secret, mailer.last.vars.token!);
    expect((await service.validatedThreepid(again.sid, s.secret)).address).toBe("alice@example.org");
  });

  it("counts parallel wrong guesses against the limit", async () => {
    const s = await emailSession();
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => service.submitToken(s.sid, s.secret, `guess-${i}`)),
    );
    const codes = results.map((r) => (r.status === "rejected" ? (r.reason as MatrixError).errcode : "ok"));
    expect(codes.filter((c) => c === "M_TOKEN_INCORRECT")).toHaveLength(MAX_ATTEMPTS);
    expect(codes.filter((c) => c === "M_SESSION_EXPIRED")).toHaveLength(10 - MAX_ATTEMPTS);
    expect(await errcode(service.submitToken(s.sid, s.secret, s.token))).toBe("M_SESSION_EXPIRED");
  });

  it("gives the attempt back when the token is right", async () => {
    const s = await emailSession();
    for (let i = 0; i < MAX_ATTEMPTS - 1; i++) {
      expect(await errcode(service.submitToken(s.sid, s.secret, "wrong"))).toBe("M_TOKEN_INCORRECT");
    }
    // One attempt is left; the right token may be submitted any number of times (a reload of the link).
    for (let i = 0; i < MAX_ATTEMPTS + 2; i++) {
      expect(await service.submitToken(s.sid, s.secret, s.token)).toMatchObject({ nextLink: null });
    }
    expect((await store.repos.sessions.findBySid(s.sid))?.failedAttempts).toBe(MAX_ATTEMPTS - 1);
    // The last attempt is still there for a wrong token, after which the session is used up.
    expect(await errcode(service.submitToken(s.sid, s.secret, "wrong"))).toBe("M_TOKEN_INCORRECT");
    expect(await errcode(service.submitToken(s.sid, s.secret, s.token))).toBe("M_SESSION_EXPIRED");
  });

  it("answers M_INVALID_PARAM for an unknown sid, a wrong client_secret or an oversized sid", async () => {
    const s = await emailSession();
    expect(await errcode(service.submitToken("nosuchsid", s.secret, s.token))).toBe("M_INVALID_PARAM");
    expect(await errcode(service.submitToken(s.sid, "other-secret", s.token))).toBe("M_INVALID_PARAM");
    expect(await errcode(service.submitToken("x".repeat(300), s.secret, s.token))).toBe("M_INVALID_PARAM");
    // None of these used up an attempt.
    expect((await store.repos.sessions.findBySid(s.sid))?.failedAttempts).toBe(0);
  });

  it("keeps the first validation time when the token is submitted again", async () => {
    const s = await emailSession();
    const validatedAt = clock;
    await service.submitToken(s.sid, s.secret, s.token);
    clock += HOUR;
    await service.submitToken(s.sid, s.secret, s.token);
    expect(await service.validatedThreepid(s.sid, s.secret)).toEqual({
      medium: "email",
      address: "alice@example.org",
      validatedAt,
    });
  });
});

describe("session lifetime (from the last change)", () => {
  it("expires an unvalidated session once the lifetime has passed since it was created", async () => {
    const { sid } = await service.requestEmailToken("alice@example.org", input("secret-1", 1));
    const token = mailer.last.vars.token!;
    clock += LIFETIME;
    expect(await errcode(service.submitToken(sid, "secret-1", token))).toBe("M_SESSION_EXPIRED");
    expect(await errcode(service.validatedThreepid(sid, "secret-1"))).toBe("M_SESSION_EXPIRED");
  });

  it("counts the lifetime from validation, and from a resend", async () => {
    const created = clock;
    const { sid } = await service.requestEmailToken("alice@example.org", input("secret-1", 1));
    const token = mailer.last.vars.token!;
    clock = created + LIFETIME - 1;
    // A resend is a change: the lifetime starts again.
    await service.requestEmailToken("alice@example.org", input("secret-1", 2));
    const resent = clock;
    clock = resent + LIFETIME - 1;
    await service.submitToken(sid, "secret-1", token);
    const validated = clock;
    clock = validated + LIFETIME - 1;
    expect((await service.validatedThreepid(sid, "secret-1")).validatedAt).toBe(validated);
    clock = validated + LIFETIME;
    expect(await errcode(service.validatedThreepid(sid, "secret-1"))).toBe("M_SESSION_EXPIRED");
    expect(await errcode(service.submitToken(sid, "secret-1", token))).toBe("M_SESSION_EXPIRED");
  });

  it("does not extend the lifetime for a repeated send_attempt, and starts a new session after expiry", async () => {
    const { sid } = await service.requestEmailToken("alice@example.org", input("secret-1", 1));
    const token = mailer.last.vars.token!;
    clock += LIFETIME - 1;
    expect(await service.requestEmailToken("alice@example.org", input("secret-1", 1))).toEqual({ sid });
    clock += 1;
    expect(await errcode(service.submitToken(sid, "secret-1", token))).toBe("M_SESSION_EXPIRED");
    const again = await service.requestEmailToken("alice@example.org", input("secret-1", 1));
    expect(again.sid).not.toBe(sid);
    expect(mailer.sent).toHaveLength(2);
    expect(await store.repos.sessions.findBySid(sid)).toBeUndefined();
  });
});

describe("validatedThreepid", () => {
  it("answers M_NO_VALID_SESSION (404) for an unknown sid or a wrong client_secret", async () => {
    const { sid } = await service.requestEmailToken("alice@example.org", input("secret-1", 1));
    await service.submitToken(sid, "secret-1", mailer.last.vars.token!);
    for (const [s, secret] of [
      ["nosuchsid", "secret-1"],
      [sid, "secret-2"],
      [sid, ""],
      ["y".repeat(256), "secret-1"],
    ] as const) {
      const err = await matrixError(service.validatedThreepid(s, secret));
      expect(err.errcode).toBe("M_NO_VALID_SESSION");
      expect(err.status).toBe(404);
    }
    expect(await service.validatedThreepid(sid, "secret-1")).toEqual({
      medium: "email",
      address: "alice@example.org",
      validatedAt: clock,
    });
  });

  it("answers M_SESSION_NOT_VALIDATED before the token is submitted, M_SESSION_EXPIRED once expired", async () => {
    const { sid } = await service.requestEmailToken("alice@example.org", input("secret-1", 1));
    expect(await errcode(service.validatedThreepid(sid, "secret-1"))).toBe("M_SESSION_NOT_VALIDATED");
    await service.submitToken(sid, "secret-1", mailer.last.vars.token!);
    clock += LIFETIME;
    expect(await errcode(service.validatedThreepid(sid, "secret-1"))).toBe("M_SESSION_EXPIRED");
  });
});

describe("msisdn", () => {
  it("texts a 6-digit code to the E.164 number and accepts it with spaces", async () => {
    const res = await service.requestMsisdnToken("fr", "06 12 34 56 78", input("secret-1", 1));
    expect(res.msisdn).toBe("33612345678");
    expect(res.intl_fmt).toBe("+33 6 12 34 56 78");
    expect(phones.sent).toHaveLength(1);
    const { to, code } = phones.sent[0]!;
    expect(to).toBe("+33612345678");
    expect(code).toMatch(/^\d{6}$/);
    // The same session for the same number written another way.
    expect((await service.requestMsisdnToken("FR", "+33 6 12 34 56 78", input("secret-1", 1))).sid).toBe(
      res.sid,
    );
    expect(phones.sent).toHaveLength(1);
    const spaced = ` ${code.slice(0, 3)} ${code.slice(3)}\t`;
    expect(await service.submitToken(res.sid, "secret-1", spaced)).toMatchObject({ nextLink: null });
    expect(await service.validatedThreepid(res.sid, "secret-1")).toEqual({
      medium: "msisdn",
      address: "33612345678",
      validatedAt: clock,
    });
  });

  it("does not strip spaces from email tokens", async () => {
    const { sid } = await service.requestEmailToken("alice@example.org", input("secret-1", 1));
    const token = mailer.last.vars.token!;
    expect(
      await errcode(service.submitToken(sid, "secret-1", `${token.slice(0, 5)} ${token.slice(5)}`)),
    ).toBe("M_TOKEN_INCORRECT");
  });

  it("rejects bad countries, invalid numbers and refused destinations without sending", async () => {
    expect(await errcode(service.requestMsisdnToken("FRA", "0612345678", input("s", 1)))).toBe(
      "M_INVALID_PARAM",
    );
    expect(await errcode(service.requestMsisdnToken("FR", "12", input("s", 1)))).toBe("M_INVALID_ADDRESS");
    expect(await errcode(service.requestMsisdnToken("FR", "0".repeat(65), input("s", 1)))).toBe(
      "M_INVALID_ADDRESS",
    );
    phones.refused.add("+33612345678");
    expect(await errcode(service.requestMsisdnToken("FR", "0612345678", input("s", 1)))).toBe(
      "M_DESTINATION_REJECTED",
    );
    expect(phones.sent).toHaveLength(0);
    expect(await store.db.selectFrom("validation_sessions").selectAll().execute()).toHaveLength(0);
  });

  it("undoes the session when the SMS cannot be sent (M_SEND_ERROR)", async () => {
    phones.failures = 1;
    expect(await errcode(service.requestMsisdnToken("FR", "0612345678", input("secret-1", 1)))).toBe(
      "M_SEND_ERROR",
    );
    expect(
      await store.repos.sessions.findByThreepidSecret("msisdn", "33612345678", "secret-1"),
    ).toBeUndefined();
    const { sid } = await service.requestMsisdnToken("FR", "0612345678", input("secret-1", 1));
    expect(phones.sent).toHaveLength(1);
    expect(await store.repos.sessions.findBySid(sid)).toBeDefined();
  });
});

describe("failed sends", () => {
  it("undoes a new session whose email could not be sent and answers M_EMAIL_SEND_ERROR", async () => {
    mailer.failures = 1;
    const err = await matrixError(service.requestEmailToken("alice@example.org", input("secret-1", 1)));
    expect(err.errcode).toBe("M_EMAIL_SEND_ERROR");
    expect(err.message).not.toMatch(/SMTP/); // the cause is kept for the log, not shown
    expect(err.cause).toBeInstanceOf(EmailSendError);
    expect(await store.db.selectFrom("validation_sessions").selectAll().execute()).toHaveLength(0);
    // The same request again (same send_attempt) sends, since nothing was sent the first time.
    const { sid } = await service.requestEmailToken("alice@example.org", input("secret-1", 1));
    expect(mailer.sent).toHaveLength(1);
    expect(mailer.last.vars.link).toContain(`sid=${sid}`);
  });

  it("keeps an existing session when a resend fails, so that the same send_attempt can be retried", async () => {
    const { sid } = await service.requestEmailToken("alice@example.org", input("secret-1", 1));
    const token = mailer.last.vars.token;
    mailer.failures = 1;
    expect(await errcode(service.requestEmailToken("alice@example.org", input("secret-1", 2)))).toBe(
      "M_EMAIL_SEND_ERROR",
    );
    expect((await store.repos.sessions.findBySid(sid))?.sendAttempt).toBe(1);
    expect(await service.requestEmailToken("alice@example.org", input("secret-1", 2))).toEqual({ sid });
    expect(mailer.sent).toHaveLength(2);
    expect(mailer.last.vars.token).toBe(token);
  });

  it("leaves next_link and the session's lifetime as they were when a resend fails", async () => {
    const first = input("secret-1", 1, { nextLink: "https://app.example.org/first" });
    const { sid } = await service.requestEmailToken("alice@example.org", first);
    const before = await store.repos.sessions.findBySid(sid);
    clock += HOUR;
    mailer.failures = 1;
    const resend = input("secret-1", 2, { nextLink: "https://app.example.org/second" });
    expect(await errcode(service.requestEmailToken("alice@example.org", resend))).toBe("M_EMAIL_SEND_ERROR");
    const after = await store.repos.sessions.findBySid(sid);
    expect(after?.nextLink).toBe("https://app.example.org/first");
    expect(after?.mtime).toBe(before?.mtime);
  });
});

describe("reap", () => {
  it("deletes only the sessions unchanged for twice the lifetime", async () => {
    const t0 = clock;
    const old = await service.requestEmailToken("old@example.org", input("secret-1", 1));
    clock = t0 + 10;
    const touched = await service.requestEmailToken("touched@example.org", input("secret-1", 1));
    const touchedToken = mailer.last.vars.token!;
    clock = t0 + LIFETIME - 1;
    await service.submitToken(touched.sid, "secret-1", touchedToken); // validation is a change
    clock = t0 + LIFETIME;
    const recent = await service.requestEmailToken("recent@example.org", input("secret-1", 1));
    clock = t0 + 2 * LIFETIME; // `old` was last changed exactly 2 lifetimes ago: not yet stale
    expect(await service.reap()).toBe(0);
    clock = t0 + 2 * LIFETIME + 1;
    expect(await service.reap()).toBe(1);
    expect(await store.repos.sessions.findBySid(old.sid)).toBeUndefined();
    expect(await store.repos.sessions.findBySid(touched.sid)).toBeDefined();
    expect(await store.repos.sessions.findBySid(recent.sid)).toBeDefined();
    clock = t0 + 3 * LIFETIME + 1;
    expect(await service.reap()).toBe(2);
    expect(await store.db.selectFrom("validation_sessions").selectAll().execute()).toHaveLength(0);
  });

  it("deletes in batches", async () => {
    for (let i = 0; i < 5; i++) await service.requestEmailToken(`u${i}@example.org`, input("secret-1", 1));
    clock += 2 * LIFETIME + 1;
    expect(await service.reap(2)).toBe(2);
    expect(await service.reap(2)).toBe(2);
    expect(await service.reap(2)).toBe(1);
    expect(await service.reap(2)).toBe(0);
  });
});

describe("rate limits", () => {
  it("limits emails per address with M_LIMIT_EXCEEDED and retry_after_ms, counting only real sends", async () => {
    // burst 3, then one every 5 minutes (12 per hour).
    const a = await service.requestEmailToken("alice@example.org", input("s1", 1));
    await service.requestEmailToken("alice@example.org", input("s1", 1)); // not sent: not counted
    await service.requestEmailToken("alice@example.org", input("s1", 2)); // resent: counted
    await service.requestEmailToken("ALICE@example.org", input("s2", 1)); // same address: counted
    expect(mailer.sent).toHaveLength(3);

    const err = await matrixError(service.requestEmailToken("alice@example.org", input("s3", 1)));
    expect(err.errcode).toBe("M_LIMIT_EXCEEDED");
    expect(err.status).toBe(429);
    expect(err.extra).toEqual({ retry_after_ms: 300_000 });
    // The refused request left no session behind; a refused resend leaves the session as it was.
    expect(
      await store.repos.sessions.findByThreepidSecret("email", "alice@example.org", "s3"),
    ).toBeUndefined();
    expect(await errcode(service.requestEmailToken("alice@example.org", input("s1", 3)))).toBe(
      "M_LIMIT_EXCEEDED",
    );
    expect((await store.repos.sessions.findBySid(a.sid))?.sendAttempt).toBe(2);
    expect(mailer.sent).toHaveLength(3);

    // Other addresses are not affected.
    await service.requestEmailToken("bob@example.org", input("s1", 1));
    expect(mailer.sent).toHaveLength(4);

    clock += 299_999;
    expect(await errcode(service.requestEmailToken("alice@example.org", input("s3", 1)))).toBe(
      "M_LIMIT_EXCEEDED",
    );
    clock += 1;
    await service.requestEmailToken("alice@example.org", input("s3", 1));
    expect(mailer.sent).toHaveLength(5);
  });

  it("limits texts per number", async () => {
    for (let i = 0; i < 3; i++) await service.requestMsisdnToken("FR", "0612345678", input(`s${i}`, 1));
    const err = await matrixError(service.requestMsisdnToken("FR", "0612345678", input("s9", 1)));
    expect(err.errcode).toBe("M_LIMIT_EXCEEDED");
    expect(err.extra.retry_after_ms).toBe(300_000);
    expect(phones.sent).toHaveLength(3);
  });
});
