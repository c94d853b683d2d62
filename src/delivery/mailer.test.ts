import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { simpleParser } from "mailparser";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type SmtpSink, startSmtpSink } from "../../test/support/smtp-sink.js";
import { captureLogger } from "../core/logger.js";
import { createMailer, type EmailConfig, EmailSendError, type Mailer, type SmtpConfig } from "./index.js";

const TEMPLATES = fileURLToPath(new URL("../../templates", import.meta.url));
const FROM = "Matrix Identity <noreply@id.example.org>";

function makeLog() {
  return captureLogger();
}

function smtpTo(sink: SmtpSink, extra: Partial<SmtpConfig> = {}): SmtpConfig {
  return { host: sink.host, port: sink.port, tls: "none", verify_certificates: true, ...extra };
}

function inviteVars(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    token: "tok_ABCDEFGHIJKLMNOP",
    ephemeral_private_key: "ephkey123",
    room_id: "!room:example.org",
    room_alias: "#room:example.org",
    room_name: "Test Room",
    room_avatar_url: "",
    sender: "@alice:example.org",
    sender_display_name: "Alice",
    bracketed_room_name: '"Test Room" ',
    bracketed_verified_sender: "(@alice:example.org) ",
    web_client_location: "https://app.element.io",
    sign_url:
      "https://id.example.org/_matrix/identity/v2/sign-ed25519?token=tok_ABCDEFGHIJKLMNOP&private_key=ephkey123",
    address: "bob@example.com",
    medium: "email",
    ...overrides,
  };
}

function boundaryOf(contentType: unknown): string {
  const ct = contentType as { value: string; params: Record<string, string> };
  expect(ct.value).toBe("multipart/alternative");
  const b = ct.params.boundary;
  if (!b) throw new Error("no boundary");
  return b;
}

const mailers: Mailer[] = [];
const sinks: SmtpSink[] = [];
const dirs: string[] = [];

function track(m: Mailer): Mailer {
  mailers.push(m);
  return m;
}

async function sink(opts?: Parameters<typeof startSmtpSink>[0]): Promise<SmtpSink> {
  const s = await startSmtpSink(opts);
  sinks.push(s);
  return s;
}

async function tempDir(prefix: string): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

function baseConfig(extra: Partial<EmailConfig> = {}): EmailConfig {
  return {
    from: FROM,
    templates_dir: TEMPLATES,
    default_brand: "matrix-org",
    outbox_dir: path.join(tmpdir(), "seraph-unused-outbox"),
    ...extra,
  };
}

afterEach(async () => {
  await Promise.all(mailers.splice(0).map((m) => m.close()));
  await Promise.all(sinks.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("structured templates over SMTP", () => {
  it("delivers an invite with escaped HTML, both parts, and safe headers", async () => {
    const s = await sink();
    const log = makeLog();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s) }), log));
    await m.send({
      template: "invite",
      to: "bob@example.com",
      vars: inviteVars({
        room_name: "<script>alert(1)</script>",
        bracketed_room_name: '"<script>alert(1)</script>" ',
        sender_display_name: "Mallory\r\nBcc: evil@x",
      }),
    });
    const [msg] = await s.waitForMessages(1);
    if (!msg) throw new Error("unreachable");
    const p = msg.parsed;

    expect(msg.envelope).toEqual({ from: "noreply@id.example.org", to: ["bob@example.com"] });
    expect(p.to && !Array.isArray(p.to) ? p.to.value.map((a) => a.address) : []).toEqual(["bob@example.com"]);
    expect(p.from?.value[0]).toMatchObject({ address: "noreply@id.example.org", name: "Matrix Identity" });
    expect(p.subject).toBe("Mallory Bcc: evil@x (@alice:example.org) has invited you to chat");
    expect(p.messageId).toMatch(/^<[0-9a-f-]{36}@id\.example\.org>$/);
    expect(p.date).toBeInstanceOf(Date);

    // No header injection: no Bcc header, every header line of the block is a known one or a fold.
    expect(p.headers.has("bcc")).toBe(false);
    expect(msg.headerBlock).not.toMatch(/^bcc:/im);
    expect(msg.headerBlock).not.toMatch(/^Mallory/m);

    // Token and join link in both parts.
    expect(p.text).toContain("tok_ABCDEFGHIJKLMNOP");
    expect(p.html).toContain("tok_ABCDEFGHIJKLMNOP");
    expect(p.text).toContain(
      "https://app.element.io/#/room/!room%3Aexample.org?email=bob%40example.com&signurl=https%3A%2F%2Fid.example.org",
    );
    expect(p.text).toContain("&guest_access_token=&guest_user_id=&room_type=");

    // Hostile room name: escaped in HTML, never raw.
    const html = p.html || "";
    expect(html).not.toContain("<script>");
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html).toContain("@alice:example.org");
    expect(p.text).toContain("“<script>alert(1)</script>”");

    expect(log.lines).toContainEqual(
      expect.objectContaining({
        level: "info",
        msg: "email sent",
        obj: expect.objectContaining({ to: "bob@example.com" }),
      }),
    );
    expect(JSON.stringify(log.lines)).not.toContain("tok_ABCDEFGHIJKLMNOP");
  });

  it("uses a fresh multipart boundary per message and reuses the pooled connection", async () => {
    const s = await sink();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s) }), makeLog()));
    for (let i = 0; i < 4; i++)
      await m.send({ template: "invite", to: `u${i}@example.com`, vars: inviteVars() });
    const msgs = await s.waitForMessages(4);
    const boundaries = msgs.map((x) => boundaryOf(x.parsed.headers.get("content-type")));
    expect(new Set(boundaries).size).toBe(4);
    expect(s.connectionCount).toBe(1);
  });

  it("delivers many concurrent sends over at most 5 connections", async () => {
    const s = await sink();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s) }), makeLog()));
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        m.send({ template: "verification", to: `user${i}@example.com`, vars: { token: String(i) } }),
      ),
    );
    const msgs = await s.waitForMessages(60);
    expect(new Set(msgs.map((x) => x.envelope.to[0])).size).toBe(60);
    expect(s.connectionCount).toBeLessThanOrEqual(5);
  });

  it("RFC 2047-encodes a non-ASCII subject", async () => {
    const s = await sink();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s) }), makeLog()));
    await m.send({
      template: "invite",
      to: "bob@example.com",
      vars: inviteVars({ sender_display_name: "Zoë" }),
    });
    const [msg] = await s.waitForMessages(1);
    const subjectHeader = /^Subject:.*(?:\r?\n[ \t].*)*/m.exec(msg?.headerBlock ?? "")?.[0] ?? "";
    expect(subjectHeader).toMatch(/=\?UTF-8\?[QB]\?/i);
    expect(subjectHeader).not.toContain("Zoë");
    expect(msg?.parsed.subject).toBe("Zoë (@alice:example.org) has invited you to chat");
  });

  it("renders missing variables as empty strings", async () => {
    const s = await sink();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s) }), makeLog()));
    await m.send({ template: "invite", to: "bob@example.com", vars: {} });
    await m.send({ template: "verification", to: "bob@example.com", vars: { token: "123456" } });
    const [invite, verification] = await s.waitForMessages(2);
    expect(invite?.parsed.subject).toBe("Someone has invited you to chat");
    expect(invite?.parsed.text).not.toContain("undefined");
    expect(invite?.parsed.html).not.toContain("undefined");
    expect(verification?.parsed.subject).toBe("Confirm your email address for Matrix");
    expect(verification?.parsed.text).toContain("123456");
  });

  it("does not repeat the Matrix ID when there is no display name", async () => {
    const s = await sink();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s) }), makeLog()));
    const vars = inviteVars({ sender_display_name: "@alice:example.org", bracketed_verified_sender: "" });
    await m.send({ template: "invite", to: "bob@example.com", vars });
    const [msg] = await s.waitForMessages(1);
    expect(msg?.parsed.subject).toBe("@alice:example.org has invited you to chat");
    expect(msg?.parsed.text).toContain("@alice:example.org has invited you to join the room");
  });

  it("sends the verification email with link and token", async () => {
    const s = await sink();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s) }), makeLog()));
    const link =
      "https://id.example.org/_matrix/identity/v2/validate/email/submitToken?token=987654&client_secret=cs&sid=42";
    await m.send({
      template: "verification",
      to: "bob@example.com",
      vars: {
        token: "987654",
        link,
        address: "bob@example.com",
        ipaddress: "192.0.2.7",
        brand: "matrix-org",
      },
    });
    const [msg] = await s.waitForMessages(1);
    expect(msg?.parsed.text).toContain(link);
    expect(msg?.parsed.text).toContain("987654");
    expect(msg?.parsed.html).toContain(link.replaceAll("&", "&amp;"));
    expect(msg?.parsed.html).toContain("192.0.2.7");
  });

  it("falls back to the default brand for unknown or hostile brands", async () => {
    const s = await sink();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s) }), makeLog()));
    await m.send({ template: "verification", brand: "../etc", to: "bob@example.com", vars: { token: "1" } });
    await m.send({ template: "verification", brand: "nope", to: "bob@example.com", vars: { token: "2" } });
    const msgs = await s.waitForMessages(2);
    expect(msgs.map((x) => x.parsed.subject)).toEqual([
      "Confirm your email address for Matrix",
      "Confirm your email address for Matrix",
    ]);
  });

  it("supports SMTP AUTH when a username is configured", async () => {
    const s = await sink({ auth: { username: "mailer", password: "s3cret" } });
    const m = track(
      createMailer(baseConfig({ smtp: smtpTo(s, { username: "mailer", password: "s3cret" }) }), makeLog()),
    );
    await m.send({ template: "verification", to: "bob@example.com", vars: { token: "1" } });
    const [msg] = await s.waitForMessages(1);
    expect(msg?.user).toBe("mailer");

    const bad = track(
      createMailer(baseConfig({ smtp: smtpTo(s, { username: "mailer", password: "wrong" }) }), makeLog()),
    );
    const err = await bad
      .send({ template: "verification", to: "bob@example.com", vars: { token: "1" } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmailSendError);
    expect((err as Error).message).not.toContain("wrong");
  });
});

describe("raw .eml templates", () => {
  let templatesDir: string;
  const RAW = [
    "Date: <%= it.date %>",
    "From: <%= it.from %>",
    "To: <%= it.to %>",
    "Message-ID: <%= it.messageid %>",
    "Subject: <%= it.subject_header_value %>",
    "X-Room: <%= it.room_name %>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/alternative; boundary="<%= it.multipart_boundary %>"',
    "",
    "--<%= it.multipart_boundary %>",
    "Content-Type: text/plain; charset=UTF-8",
    "",
    "Token: <%= it.token %> Room: <%= it.room_name %> Missing: [<%= it.not_given %>]",
    "Link: https://example.org/join?room=<%= it.room_name_forurl %>&email=<%= it.to_forurl %>",
    "",
    "--<%= it.multipart_boundary %>",
    "Content-Type: text/html; charset=UTF-8",
    "",
    "<p>Room: <%= it.room_name_forhtml %></p>",
    "",
    "--<%= it.multipart_boundary %>--",
    "",
  ].join("\n");

  beforeAll(async () => {
    templatesDir = await tempDir("seraph-raw-templates-");
    await cp(path.join(TEMPLATES, "matrix-org"), path.join(templatesDir, "matrix-org"), { recursive: true });
    await cp(path.join(TEMPLATES, "matrix-org"), path.join(templatesDir, "acme"), { recursive: true });
    // Raw wins over the structured files that are also present in "acme".
    await writeFile(path.join(templatesDir, "acme", "invite.eml"), RAW);
    await writeFile(
      path.join(templatesDir, "acme", "invite.subject.eta"),
      "Einladung von <%= it.sender_display_name %>\n",
    );
    // A raw template without a subject template gets the default subject.
    await cp(path.join(TEMPLATES, "matrix-org"), path.join(templatesDir, "plain"), { recursive: true });
    await rm(path.join(templatesDir, "plain", "invite.subject.eta"));
    await writeFile(path.join(templatesDir, "plain", "invite.eml"), RAW);
    // A broken operator template.
    await cp(path.join(TEMPLATES, "matrix-org"), path.join(templatesDir, "broken"), { recursive: true });
    await writeFile(
      path.join(templatesDir, "broken", "invite.eml"),
      "Subject: x\n\n<% throw new Error('boom') %>\n",
    );
    await writeFile(path.join(templatesDir, "broken", "verification.txt.eta"), "<% if ( %>\n");
  });

  it("sends the operator's message verbatim with variables filled in", async () => {
    const s = await sink();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s), templates_dir: templatesDir }), makeLog()));
    await m.send({
      template: "invite",
      brand: "acme",
      to: "bob@example.com",
      vars: inviteVars({ room_name: "R&D <team>", sender_display_name: "Zoë" }),
    });
    const [msg] = await s.waitForMessages(1);
    if (!msg) throw new Error("unreachable");
    const p = msg.parsed;
    expect(p.subject).toBe("Einladung von Zoë");
    expect(msg.headerBlock).toMatch(/^Subject: =\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=\r$/m);
    expect(msg.headerBlock).toMatch(/^Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000\r$/m);
    expect(p.messageId).toMatch(/^<[0-9a-f-]{36}@id\.example\.org>$/);
    expect(p.from?.value[0]?.address).toBe("noreply@id.example.org");
    expect(p.headers.get("x-room")).toBe("R&D <team>");
    expect(p.text).toContain("Token: tok_ABCDEFGHIJKLMNOP Room: R&D <team> Missing: []");
    expect(p.text).toContain(
      "Link: https://example.org/join?room=R%26D%20%3Cteam%3E&email=bob%40example.com",
    );
    expect(p.html).toContain("<p>Room: R&amp;D &lt;team&gt;</p>");
    // CRLF everywhere, no bare LF or CR.
    expect(msg.rawText).not.toMatch(/[^\r]\n|\r[^\n]/);
  });

  it("does not let CR/LF in a value inject headers, and uses a fresh boundary per message", async () => {
    const s = await sink();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s), templates_dir: templatesDir }), makeLog()));
    const vars = inviteVars({
      room_name: "x\r\nBcc: evil@x\r\n\r\n<b>body</b>",
      sender_display_name: "a\nB: c",
    });
    await m.send({ template: "invite", brand: "acme", to: "bob@example.com", vars });
    await m.send({ template: "invite", brand: "acme", to: "bob@example.com", vars });
    const msgs = await s.waitForMessages(2);
    for (const msg of msgs) {
      expect(msg.parsed.headers.has("bcc")).toBe(false);
      expect(msg.headerBlock).not.toMatch(/^bcc:/im);
      expect(msg.parsed.headers.get("x-room")).toBe("x Bcc: evil@x  <b>body</b>");
      expect(msg.headerBlock).toContain("\r\nX-Room: x Bcc: evil@x  <b>body</b>\r\nMIME-Version: 1.0\r\n");
      expect(msg.parsed.subject).toBe("Einladung von a B: c");
      expect(msg.envelope.to).toEqual(["bob@example.com"]);
    }
    const [b1, b2] = msgs.map((x) => boundaryOf(x.parsed.headers.get("content-type")));
    expect(b1).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(b2).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(b1).not.toBe(b2);
  });

  it("uses a default subject when the brand has no subject template", async () => {
    const s = await sink();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s), templates_dir: templatesDir }), makeLog()));
    await m.send({ template: "invite", brand: "plain", to: "bob@example.com", vars: inviteVars() });
    const [msg] = await s.waitForMessages(1);
    expect(msg?.parsed.subject).toBe("You have been invited to a room on Matrix");
  });

  it("turns template errors into EmailSendError without sending", async () => {
    const s = await sink();
    const log = makeLog();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s), templates_dir: templatesDir }), log));
    for (const template of ["invite", "verification"] as const) {
      const err = await m
        .send({ template, brand: "broken", to: "bob@example.com", vars: { token: "secret-token" } })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EmailSendError);
      expect((err as EmailSendError).reason).toBe("template");
      expect((err as Error).message).not.toContain("secret-token");
      expect((err as Error).cause).toBeDefined();
    }
    expect(s.messages).toHaveLength(0);
    expect(JSON.stringify(log.lines)).not.toContain("secret-token");
  });
});

describe("outbox mode", () => {
  it("writes one parseable .eml per message and logs without the token", async () => {
    const outbox = path.join(await tempDir("seraph-outbox-"), "nested", "outbox");
    const log = makeLog();
    const m = track(createMailer(baseConfig({ outbox_dir: outbox }), log));
    await m.send({ template: "invite", to: "bob@example.com", vars: inviteVars() });
    await m.send({
      template: "verification",
      to: "carol@example.com",
      vars: { token: "424242", link: "https://x.example/v" },
    });
    const files = (await readdir(outbox)).sort();
    expect(files).toHaveLength(2);
    for (const f of files) expect(f).toMatch(/^\d{8}T\d{9}Z-\d{6}-[0-9a-f]{12}\.eml$/);

    const first = await readFile(path.join(outbox, files[0] ?? ""));
    const second = await readFile(path.join(outbox, files[1] ?? ""));
    expect(first.toString("utf8")).not.toMatch(/[^\r]\n/);
    const p1 = await simpleParser(first);
    const p2 = await simpleParser(second);
    expect(p1.subject).toBe("Alice (@alice:example.org) has invited you to chat");
    expect(p1.text).toContain("tok_ABCDEFGHIJKLMNOP");
    expect(p2.subject).toBe("Confirm your email address for Matrix");
    expect(p2.text).toContain("424242");
    expect((await stat(path.join(outbox, files[0] ?? ""))).mode & 0o777).toBe(0o600);

    const infos = log.lines.filter((l) => l.level === "info");
    expect(infos).toHaveLength(2);
    expect(infos[0]?.obj).toMatchObject({
      to: "bob@example.com",
      template: "invite",
      file: path.join(outbox, files[0] ?? ""),
    });
    expect(JSON.stringify(log.lines)).not.toMatch(/tok_ABCDEFGHIJKLMNOP|424242/);
  });

  it("writes raw templates as is", async () => {
    const templatesDir = await tempDir("seraph-raw-outbox-");
    await cp(path.join(TEMPLATES, "matrix-org"), path.join(templatesDir, "matrix-org"), { recursive: true });
    await writeFile(
      path.join(templatesDir, "matrix-org", "verification.eml"),
      "From: <%= it.from %>\nTo: <%= it.to %>\nSubject: <%= it.subject_header_value %>\n\nCode <%= it.token %>\n",
    );
    const outbox = await tempDir("seraph-outbox-raw-");
    const m = track(createMailer(baseConfig({ outbox_dir: outbox, templates_dir: templatesDir }), makeLog()));
    await m.send({ template: "verification", to: "bob@example.com", vars: { token: "777" } });
    const [file] = await readdir(outbox);
    const raw = await readFile(path.join(outbox, file ?? ""), "utf8");
    expect(raw).toBe(
      `From: ${FROM}\r\nTo: bob@example.com\r\nSubject: Confirm your email address for Matrix\r\n\r\nCode 777\r\n`,
    );
  });
});

describe("failures", () => {
  it("rejects invalid recipients before sending", async () => {
    const s = await sink();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s) }), makeLog()));
    for (const to of ["a@b.org, c@d.org", "a@b.org\r\nBcc: evil@x", "Alice <a@b.org>", "nope"]) {
      const err = await m.send({ template: "verification", to, vars: {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EmailSendError);
      expect((err as EmailSendError).reason).toBe("invalid_recipient");
    }
    expect(s.messages).toHaveLength(0);
  });

  it("maps an SMTP rejection to EmailSendError and keeps working afterwards", async () => {
    const s = await sink();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s) }), makeLog()));
    s.failNext(1);
    const t0 = Date.now();
    const err = await m
      .send({ template: "verification", to: "bob@example.com", vars: {} })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmailSendError);
    expect((err as EmailSendError).reason).toBe("delivery");
    expect(String((err as Error).cause)).toContain("550");
    expect(Date.now() - t0).toBeLessThan(3_000);
    await m.send({ template: "verification", to: "bob@example.com", vars: {} });
    await s.waitForMessages(1);
  });

  it("fails quickly when nothing is listening", async () => {
    const s = await startSmtpSink();
    const port = s.port;
    await s.close();
    const m = track(
      createMailer(
        baseConfig({ smtp: { host: "127.0.0.1", port, tls: "none", verify_certificates: true } }),
        makeLog(),
      ),
    );
    const t0 = Date.now();
    const err = await m
      .send({ template: "verification", to: "bob@example.com", vars: {} })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmailSendError);
    expect(Date.now() - t0).toBeLessThan(6_000);
  });

  it("refuses plain text when STARTTLS is required but not offered", async () => {
    const s = await sink();
    const m = track(createMailer(baseConfig({ smtp: smtpTo(s, { tls: "starttls" }) }), makeLog()));
    const err = await m
      .send({ template: "verification", to: "bob@example.com", vars: {} })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmailSendError);
    expect(s.messages).toHaveLength(0);
  });

  it("rejects sends after close()", async () => {
    const m = createMailer(baseConfig({ outbox_dir: await tempDir("seraph-closed-") }), makeLog());
    await m.close();
    const err = await m
      .send({ template: "verification", to: "bob@example.com", vars: {} })
      .catch((e: unknown) => e);
    expect((err as EmailSendError).reason).toBe("closed");
  });
});

describe("TLS certificate verification", () => {
  for (const mode of ["tls", "starttls"] as const) {
    it(`${mode}: refuses a self-signed certificate when verify_certificates is true`, async () => {
      const s = await sink({ tls: mode });
      const m = track(
        createMailer(baseConfig({ smtp: smtpTo(s, { tls: mode, verify_certificates: true }) }), makeLog()),
      );
      const err = await m
        .send({ template: "verification", to: "bob@example.com", vars: {} })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EmailSendError);
      expect(String((err as Error).cause)).toMatch(/self[- ]signed|certificate/i);
      expect(s.messages).toHaveLength(0);
    });

    it(`${mode}: delivers over TLS when verify_certificates is false`, async () => {
      const s = await sink({ tls: mode });
      const m = track(
        createMailer(baseConfig({ smtp: smtpTo(s, { tls: mode, verify_certificates: false }) }), makeLog()),
      );
      await m.send({ template: "verification", to: "bob@example.com", vars: { token: "9" } });
      const [msg] = await s.waitForMessages(1);
      expect(msg?.secure).toBe(true);
    });
  }
});
