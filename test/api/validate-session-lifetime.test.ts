import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { V1 } from "../support/paths.js";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";
import { type SmtpSink, startSmtpSink } from "../support/smtp-sink.js";

// v1 routes: the same services as v2, without the account step.
const HOUR = 3_600_000;

let sink: SmtpSink;
let is: TestSeraph;
let clock = Date.UTC(2026, 0, 1);

beforeAll(async () => {
  sink = await startSmtpSink();
  is = await startSeraph(
    { email: { smtp: { host: sink.host, port: sink.port, tls: "none" } }, v1: { enable_bind: true } },
    { now: () => clock },
  );
});
afterAll(async () => {
  await is?.close();
  await sink?.close();
});

async function session(email: string, secret: string) {
  sink.clear();
  const res = await call(`${is.url}${V1}/validate/email/requestToken`, {
    body: { client_secret: secret, email, send_attempt: 1 },
  });
  const sid = res.body.sid as string;
  const [mail] = await sink.waitForMessages(1);
  const token = /token=([A-Za-z0-9]+)/.exec(mail!.parsed.text ?? "")?.[1] ?? "";
  const submit = () =>
    call(`${is.url}${V1}/validate/email/submitToken`, { body: { sid, client_secret: secret, token } });
  const validated = () => call(`${is.url}${V1}/3pid/getValidated3pid?sid=${sid}&client_secret=${secret}`);
  const bind = () =>
    call(`${is.url}${V1}/3pid/bind`, { body: { sid, client_secret: secret, mxid: "@clock:hs.test" } });
  return { sid, submit, validated, bind };
}

describe("session lifetime (24 h from the last change, on an injected clock)", () => {
  it("expires an unvalidated session after 24 h", async () => {
    const s = await session("late@example.org", "secret-late");
    clock += 24 * HOUR + 1;
    const res = await s.submit();
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe("M_SESSION_EXPIRED");
  });

  it("counts 24 h from validation, and refuses an expired session for getValidated3pid and bind", async () => {
    const s = await session("ontime@example.org", "secret-ontime");
    clock += 23 * HOUR;
    expect((await s.submit()).body).toEqual({ success: true });
    clock += 23 * HOUR; // 46 h after creation, 23 h after validation: still valid
    expect((await s.validated()).status).toBe(200);
    clock += 2 * HOUR;
    const expired = await s.validated();
    expect(expired.status).toBe(400);
    expect(expired.body.errcode).toBe("M_SESSION_EXPIRED");
    const bind = await s.bind();
    expect(bind.status).toBe(400);
    expect(bind.body.errcode).toBe("M_SESSION_EXPIRED");
  });

  it("starts a new session when the old one expired", async () => {
    const first = await session("again@example.org", "secret-again");
    clock += 25 * HOUR;
    const second = await session("again@example.org", "secret-again");
    expect(second.sid).not.toBe(first.sid);
    expect((await second.submit()).body).toEqual({ success: true });
  });
});
