import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type FakeSms, startFakeSms } from "../../../test/support/fake-sms.js";
import { captureLogger } from "../../core/logger.js";
import { createSmsProvider, type SmsProvider, SmsSendError, smsConfigSchema } from "./index.js";

const BEARER = "webhook-bearer-secret";

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

function webhook(http: Record<string, unknown> = {}, log = makeLog()): SmsProvider {
  return createSmsProvider(
    smsConfigSchema.parse({ provider: "http", http: { url: `${fake.url}/sms/send?key=q`, ...http } }),
    log,
  );
}

async function sendError(p: Promise<void>): Promise<SmsSendError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SmsSendError);
  return err as SmsSendError;
}

describe("http (webhook) provider", () => {
  it("POSTs JSON {to, body, from} with the bearer token", async () => {
    const log = makeLog();
    const sms = webhook({ bearer_token: BEARER }, log);
    expect(sms.name).toBe("http");
    await sms.send({ to: "+447400123456", body: "Your code is 987650", from: "Seraph" });
    const [req] = await fake.waitForRequests(1);
    expect(req?.method).toBe("POST");
    expect(req?.path).toBe("/sms/send");
    expect(req?.query.get("key")).toBe("q");
    expect(req?.headers["content-type"]).toBe("application/json");
    expect(req?.headers.authorization).toBe(`Bearer ${BEARER}`);
    expect(req?.json).toEqual({ to: "+447400123456", body: "Your code is 987650", from: "Seraph" });
    // http:// with a bearer token warns once; the send logs one info line without the body.
    expect(log.lines.map((l) => l.level)).toEqual(["warn", "info"]);
    expect(JSON.stringify(log.lines)).not.toMatch(/987650|webhook-bearer/);
    await sms.close();
  });

  it("omits Authorization and from when not set", async () => {
    const sms = webhook();
    await sms.send({ to: "+33612345678", body: "b" });
    const [req] = await fake.waitForRequests(1);
    expect(req?.headers.authorization).toBeUndefined();
    expect(req?.json).toEqual({ to: "+33612345678", body: "b" });
    await sms.close();
  });

  it("maps failures: 422 → rejected (quoting the error), 500 → unreachable, 403 → config", async () => {
    const sms = webhook({ bearer_token: BEARER });
    fake.failNext(1, 422, { error: `destination not supported (${BEARER})`, code: "E_DEST" });
    const e1 = await sendError(sms.send({ to: "+447400123456", body: "Your code is 987650" }));
    expect(e1).toMatchObject({ reason: "rejected", status: 422, providerCode: "E_DEST" });
    expect(e1.message).toContain("destination not supported");
    expect(e1.message).not.toContain(BEARER);
    expect(e1.message).not.toContain("987650");
    expect(e1.message).not.toContain("key=q");

    fake.failNext(1, 500);
    expect(await sendError(sms.send({ to: "+447400123456", body: "b" }))).toMatchObject({
      reason: "unreachable",
      status: 500,
    });
    fake.failNext(1, 403);
    expect((await sendError(sms.send({ to: "+447400123456", body: "b" }))).reason).toBe("config");
    await sms.send({ to: "+447400123456", body: "b" });
    await sms.close();
  });

  it("a hanging webhook times out", async () => {
    const sms = webhook({ timeout_ms: 250 });
    fake.hang();
    const t0 = Date.now();
    const err = await sendError(sms.send({ to: "+447400123456", body: "b" }));
    expect(err.reason).toBe("timeout");
    expect(err.message).toContain("250 ms");
    expect(Date.now() - t0).toBeLessThan(3_000);
    fake.hang(false);
    await sms.close();
  });

  it("connection refused → unreachable", async () => {
    const dead = await startFakeSms();
    const url = `${dead.url}/sms`;
    await dead.close();
    const sms = createSmsProvider(smsConfigSchema.parse({ provider: "http", http: { url } }), makeLog());
    expect((await sendError(sms.send({ to: "+447400123456", body: "b" }))).reason).toBe("unreachable");
    await sms.close();
  });

  it("createSmsProvider refuses a provider without its settings", () => {
    const cfg = { ...smsConfigSchema.parse({}), provider: "http" as const };
    expect(() => createSmsProvider(cfg, makeLog())).toThrow(SmsSendError);
  });
});
