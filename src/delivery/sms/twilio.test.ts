import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type FakeSms, startFakeSms } from "../../../test/support/fake-sms.js";
import { captureLogger } from "../../core/logger.js";
import {
  createSmsProvider,
  type SmsConfigInput,
  type SmsProvider,
  SmsSendError,
  smsConfigSchema,
} from "./index.js";

const SID = `AC${"0123456789abcdef".repeat(2)}`;
const TOKEN = "s3cr3t-auth-token";
const MG = `MG${"fedcba9876543210".repeat(2)}`;

function makeLog() {
  return captureLogger();
}

let fake: FakeSms;
beforeAll(async () => {
  fake = await startFakeSms();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.clear();
  fake.hang(false);
});

function twilio(extra: Partial<NonNullable<SmsConfigInput>["twilio"]> = {}, log = makeLog()): SmsProvider {
  const cfg = smsConfigSchema.parse({
    provider: "twilio",
    twilio: { account_sid: SID, auth_token: TOKEN, from: "+15005550006", api_base_url: fake.url, ...extra },
  });
  return createSmsProvider(cfg, log);
}

async function sendError(p: Promise<void>): Promise<SmsSendError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SmsSendError);
  return err as SmsSendError;
}

describe("twilio provider", () => {
  it("POSTs the exact Messages.json request", async () => {
    const log = makeLog();
    const sms = twilio({}, log);
    expect(sms.name).toBe("twilio");
    await sms.send({ to: "+447400123456", body: "Your code is 987650 & more+" });
    const [req] = await fake.waitForRequests(1);
    expect(req?.method).toBe("POST");
    expect(req?.path).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`);
    expect(req?.headers.authorization).toBe(`Basic ${Buffer.from(`${SID}:${TOKEN}`).toString("base64")}`);
    expect(req?.basicAuth).toEqual({ username: SID, password: TOKEN });
    expect(req?.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(req?.form).toEqual({
      To: "+447400123456",
      From: "+15005550006",
      Body: "Your code is 987650 & more+",
    });
    expect(req?.rawBody).toContain("To=%2B447400123456");
    expect(log.lines).toEqual([
      expect.objectContaining({
        level: "info",
        obj: expect.objectContaining({ sid: expect.stringMatching(/^SM/) }),
      }),
    ]);
    expect(JSON.stringify(log.lines)).not.toContain("987650 &");
    await sms.close();
  });

  it("uses the message's originator over twilio.from, and sends MessagingServiceSid", async () => {
    const sms = twilio({ messaging_service_sid: MG });
    await sms.send({ to: "+447400123456", body: "b", from: "Seraph" });
    const [req] = await fake.waitForRequests(1);
    expect(req?.form).toEqual({ To: "+447400123456", From: "Seraph", MessagingServiceSid: MG, Body: "b" });
    await sms.close();

    fake.clear();
    const svcOnly = createSmsProvider(
      smsConfigSchema.parse({
        provider: "twilio",
        twilio: {
          account_sid: SID,
          auth_token: TOKEN,
          messaging_service_sid: MG,
          api_base_url: `${fake.url}/`,
        },
      }),
      makeLog(),
    );
    await svcOnly.send({ to: "+447400123456", body: "b" });
    const [req2] = await fake.waitForRequests(1);
    expect(req2?.path).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`);
    expect(req2?.form).toEqual({ To: "+447400123456", MessagingServiceSid: MG, Body: "b" });
    await svcOnly.close();
  });

  it("4xx → rejected, quoting Twilio's code and message without credentials", async () => {
    const log = makeLog();
    const sms = twilio({}, log);
    fake.failNext(1, 400, {
      code: 21211,
      message: `The 'To' number +4474 is not a valid phone number (account ${SID}, token ${TOKEN}).`,
      more_info: "https://www.twilio.com/docs/errors/21211",
      status: 400,
    });
    const err = await sendError(sms.send({ to: "+447400123456", body: "Your code is 987650" }));
    expect(err.reason).toBe("rejected");
    expect(err.status).toBe(400);
    expect(err.providerCode).toBe("21211");
    expect(err.message).toContain("21211");
    expect(err.message).toContain("is not a valid phone number");
    const everything = `${err.message} ${JSON.stringify(log.lines)}`;
    expect(everything).not.toContain(TOKEN);
    expect(everything).not.toContain(SID);
    expect(everything).not.toContain("987650");
    expect(log.lines.at(-1)).toMatchObject({ level: "warn", obj: { reason: "rejected", status: 400 } });
    await sms.close();
  });

  it("5xx → unreachable; 401 → config; 429 → unreachable; 302 → bad_response", async () => {
    const sms = twilio();
    fake.failNext(1, 503);
    expect(await sendError(sms.send({ to: "+447400123456", body: "b" }))).toMatchObject({
      reason: "unreachable",
      status: 503,
    });
    fake.failNext(1, 401, { code: 20003, message: "Authenticate", status: 401 });
    expect(await sendError(sms.send({ to: "+447400123456", body: "b" }))).toMatchObject({
      reason: "config",
      providerCode: "20003",
    });
    fake.failNext(1, 429, { code: 20429, message: "Too Many Requests" });
    expect((await sendError(sms.send({ to: "+447400123456", body: "b" }))).reason).toBe("unreachable");
    fake.failNext(1, 302, "moved");
    expect((await sendError(sms.send({ to: "+447400123456", body: "b" }))).reason).toBe("bad_response");
    // A non-JSON error body still gives a clean error.
    fake.failNext(1, 400, "<html>nope</html>");
    const e = await sendError(sms.send({ to: "+447400123456", body: "b" }));
    expect(e.reason).toBe("rejected");
    expect(e.providerCode).toBeUndefined();
    // And the provider still works afterwards.
    await sms.send({ to: "+447400123456", body: "b" });
    await sms.close();
  });

  it("a hanging Twilio times out", async () => {
    const sms = twilio({ timeout_ms: 300 });
    fake.hang();
    const t0 = Date.now();
    const err = await sendError(sms.send({ to: "+447400123456", body: "b" }));
    expect(err.reason).toBe("timeout");
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(fake.requests).toHaveLength(1);
    fake.hang(false);
    await sms.close();
  });

  it("an unreachable Twilio → unreachable", async () => {
    const dead = await startFakeSms();
    const url = dead.url;
    await dead.close();
    const sms = twilio({ api_base_url: url });
    const err = await sendError(sms.send({ to: "+447400123456", body: "b" }));
    expect(err.reason).toBe("unreachable");
    expect(err.message).not.toContain(url);
    await sms.close();
  });

  it("rejects a non-E.164 destination without calling Twilio, and fails after close", async () => {
    const sms = twilio();
    expect((await sendError(sms.send({ to: "447400123456", body: "b" }))).reason).toBe("rejected");
    expect(fake.requests).toHaveLength(0);
    await sms.close();
    expect((await sendError(sms.send({ to: "+447400123456", body: "b" }))).reason).toBe("unreachable");
  });

  it("close() waits for a send in flight", async () => {
    const sms = twilio();
    const sending = sms.send({ to: "+447400123456", body: "b" });
    await sms.close();
    await expect(sending).resolves.toBeUndefined();
    expect(fake.requests).toHaveLength(1);
  });
});
