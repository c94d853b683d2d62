import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HomeserverClient } from "../../src/federation/index.js";
import { lookupHash } from "../../src/threepid/normalise.js";
import { createStubDns, type FakeHomeserver, startFakeHomeserver } from "../support/fake-homeserver.js";
import { latestSmsCode } from "../support/fake-sms.js";
import { call, freePort, startSeraph, type TestSeraph } from "../support/seraph.js";
import { type SmtpSink, startSmtpSink } from "../support/smtp-sink.js";

// The log of a whole lifecycle (register, requestToken, submit by GET with next_link, bind, lookup, unbind,
// store-invite, sign-ed25519, logout) at debug level holds no token, client_secret, sid, ephemeral private
// key, and (log.redact_addresses, on by default) no full email address or phone number.

const V2 = "/_matrix/identity/v2";
const V1 = "/_matrix/identity/api/v1";

let sink: SmtpSink;
let hs: FakeHomeserver;
let serverName: string;
let is: TestSeraph;
const lines: string[] = [];
const dns = createStubDns({ hosts: { "hs.test": "127.0.0.1" } });

beforeAll(async () => {
  sink = await startSmtpSink();
  const port = await freePort();
  serverName = `hs.test:${port}`;
  hs = await startFakeHomeserver({ serverName, port });
  const dir = mkdtempSync(join(tmpdir(), "seraph-logs-"));
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      done();
    },
  });
  is = await startSeraph(
    {
      log: { level: "debug" },
      email: { smtp: { host: sink.host, port: sink.port, tls: "none" } },
      sms: { provider: "log", outbox_dir: join(dir, "sms") },
      validation: { next_link_allowlist: ["app.example.org"] },
      onbind: { poll_interval_ms: 50 },
    },
    {
      dir,
      logger: pino({ level: "debug" }, stream),
      homeservers: new HomeserverClient({
        dns,
        ipAllowlist: ["127.0.0.1/32"],
        verifyCertificates: false,
        requestTimeoutMs: 2000,
      }),
    },
  );
});

afterAll(async () => {
  await is?.close();
  await hs?.close();
  await sink?.close();
});

describe("secrets and addresses in the log", () => {
  it("a whole lifecycle leaves no secret and no full address in any log line", async () => {
    const secrets: string[] = [];
    const mxid = `@logcheck:${serverName}`;
    const oidc = `oidc-logcheck-${Math.random().toString(36).slice(2)}`;
    secrets.push(oidc);
    hs.setUserinfo(oidc, mxid);

    const reg = await call(`${is.url}${V2}/account/register`, {
      body: { access_token: oidc, token_type: "Bearer", matrix_server_name: serverName, expires_in: 3600 },
    });
    expect(reg.status).toBe(200);
    const token = reg.body.token as string;
    secrets.push(token);
    const auth = { authorization: `Bearer ${token}` };

    // Email: requestToken with next_link, submit by GET (the redirect), bind.
    const email = "alice.logcheck@example.org";
    const secret = "logcheck-client-secret-1";
    secrets.push(secret);
    const req = await call(`${is.url}${V2}/validate/email/requestToken`, {
      headers: auth,
      body: { client_secret: secret, email, send_attempt: 1, next_link: "https://app.example.org/done" },
    });
    expect(req.status).toBe(200);
    const sid = req.body.sid as string;
    secrets.push(sid);
    let link: URL | undefined;
    await expect
      .poll(() => {
        const text = sink.messages.find((m) => m.parsed.text?.includes(sid))?.parsed.text;
        const url = text ? /https?:\/\/\S+submitToken\?\S+/.exec(text)?.[0] : undefined;
        link = url ? new URL(url) : undefined;
        return link !== undefined;
      })
      .toBe(true);
    secrets.push(link!.searchParams.get("token")!);
    const submitted = await fetch(link!, { redirect: "manual" });
    expect(submitted.status).toBe(302);
    expect(submitted.headers.get("location")).toBe("https://app.example.org/done");
    const bound = await call(`${is.url}${V2}/3pid/bind`, {
      headers: auth,
      body: { sid, client_secret: secret, mxid },
    });
    expect(bound.status).toBe(200);

    // Phone: requestToken, submit by POST, bind.
    const phone = "447911123456";
    const phoneSecret = "logcheck-client-secret-2";
    secrets.push(phoneSecret);
    const sms = await call(`${is.url}${V2}/validate/msisdn/requestToken`, {
      headers: auth,
      body: { client_secret: phoneSecret, country: "GB", phone_number: "07911 123456", send_attempt: 1 },
    });
    expect(sms.status).toBe(200);
    const phoneSid = sms.body.sid as string;
    secrets.push(phoneSid);
    let code: string | undefined;
    await expect
      .poll(async () => {
        code = await latestSmsCode(join(is.dir, "sms"), `+${phone}`);
        return code !== undefined;
      })
      .toBe(true);
    secrets.push(code!);
    const phoneSubmit = await call(`${is.url}${V2}/validate/msisdn/submitToken`, {
      headers: auth,
      body: { sid: phoneSid, client_secret: phoneSecret, token: code },
    });
    expect(phoneSubmit.status).toBe(200);
    expect(
      (
        await call(`${is.url}${V2}/3pid/bind`, {
          headers: auth,
          body: { sid: phoneSid, client_secret: phoneSecret, mxid },
        })
      ).status,
    ).toBe(200);

    // Lookups: v2 hashed and plain, v1 single and bulk.
    const details = await call(`${is.url}${V2}/hash_details`, { headers: auth });
    const pepper = details.body.lookup_pepper as string;
    const hashed = await call(`${is.url}${V2}/lookup`, {
      headers: auth,
      body: { addresses: [lookupHash(email, "email", pepper)], algorithm: "sha256", pepper },
    });
    expect(Object.values(hashed.body.mappings as object)).toEqual([mxid]);
    const plain = await call(`${is.url}${V2}/lookup`, {
      headers: auth,
      body: { addresses: [`${phone} msisdn`], algorithm: "none", pepper },
    });
    expect(Object.values(plain.body.mappings as object)).toEqual([mxid]);
    expect((await call(`${is.url}${V1}/lookup?medium=email&address=${email}`)).body.mxid).toBe(mxid);
    const bulk = await call(`${is.url}${V1}/bulk_lookup`, { body: { threepids: [["msisdn", phone]] } });
    expect(bulk.body.threepids).toEqual([["msisdn", phone, mxid]]);

    // Unbind the email.
    const unbound = await call(`${is.url}${V2}/3pid/unbind`, {
      body: { sid, client_secret: secret, mxid, threepid: { medium: "email", address: email } },
    });
    expect(unbound.status).toBe(200);

    // store-invite, then sign-ed25519 with the ephemeral private key from the mail.
    const invitee = "bob.invitee@example.net";
    sink.clear();
    const stored = await call(`${is.url}${V2}/store-invite`, {
      headers: auth,
      body: { medium: "email", address: invitee, room_id: "!room:hs.test", sender: mxid },
    });
    expect(stored.status).toBe(200);
    const inviteToken = stored.body.token as string;
    secrets.push(inviteToken);
    let privateKey: string | undefined;
    await expect
      .poll(() => {
        // The sign URL sits, encoded, inside the web client link: decode until it shows.
        let text = sink.messages[0]?.parsed.text ?? "";
        for (let i = 0; i < 3 && !/private_key=/.test(text); i++) {
          try {
            text = decodeURIComponent(text);
          } catch {
            break;
          }
        }
        privateKey = /private_key=([^&\s"<>]+)/.exec(text)?.[1];
        while (privateKey?.includes("%")) privateKey = decodeURIComponent(privateKey);
        return privateKey !== undefined;
      })
      .toBe(true);
    secrets.push(privateKey!);
    const signed = await call(`${is.url}${V2}/sign-ed25519`, {
      headers: auth,
      body: { mxid, token: inviteToken, private_key: privateKey },
    });
    expect(signed.status).toBe(200);

    const logout = await call(`${is.url}${V2}/account/logout`, { method: "POST", headers: auth });
    expect(logout.status).toBe(200);

    // Every request was logged (one line each), and the mail and SMS sends too.
    await expect.poll(() => lines.filter((l) => l.includes('"msg":"request"')).length).toBeGreaterThan(15);
    expect(lines.some((l) => l.includes("email sent"))).toBe(true);
    expect(lines.some((l) => l.includes("SMS written to outbox"))).toBe(true);

    const addresses = [email, invitee, phone, `+${phone}`, "07911 123456", "7911123456"];
    for (const line of lines) {
      for (const s of [...secrets, ...addresses]) {
        expect(line, `log line holds ${s}`).not.toContain(s);
        expect(line, `log line holds ${s}`).not.toContain(encodeURIComponent(s));
      }
      expect(line).not.toContain("FST_ERR_REP_ALREADY_SENT");
      // Request lines carry the path only, never a query string.
      const entry = JSON.parse(line) as { msg?: string; path?: string };
      if (entry.msg === "request") expect(entry.path).not.toContain("?");
    }
    // The redacted forms are there, so the log is still useful.
    expect(lines.some((l) => l.includes("ali...@exa..."))).toBe(true);
    expect(lines.some((l) => l.includes("+44...56"))).toBe(true);
  });
});
