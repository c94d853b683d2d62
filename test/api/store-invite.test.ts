import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { V1 } from "../support/paths.js";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";
import { type SmtpSink, startSmtpSink } from "../support/smtp-sink.js";

let sink: SmtpSink;
let is: TestSeraph;
let templatesDir: string;

beforeAll(async () => {
  sink = await startSmtpSink();
  // A templates folder with the stock brand plus an operator's raw .eml brand.
  templatesDir = mkdtempSync(join(tmpdir(), "seraph-templates-"));
  mkdirSync(join(templatesDir, "raw-brand"));
  writeFileSync(
    join(templatesDir, "raw-brand", "invite.eml"),
    [
      "From: <%= it.from %>",
      "To: <%= it.to %>",
      "Subject: Invitation from <%= it.sender_display_name %>",
      "Message-ID: <%= it.messageid %>",
      "Date: <%= it.date %>",
      "MIME-Version: 1.0",
      'Content-Type: text/plain; charset="UTF-8"',
      "",
      "Join <%= it.room_name %> with token <%= it.token %>",
      "",
    ].join("\n"),
  );
  const { cpSync } = await import("node:fs");
  cpSync(join(import.meta.dirname, "..", "..", "templates", "matrix-org"), join(templatesDir, "matrix-org"), {
    recursive: true,
  });
  is = await startSeraph({
    email: {
      templates_dir: templatesDir,
      smtp: { host: sink.host, port: sink.port, tls: "none" },
    },
  });
});

afterAll(async () => {
  await is?.close();
  await sink?.close();
});

beforeEach(() => sink.clear());

const invite = (extra: Record<string, unknown> = {}, query = "") =>
  call(`${is.url}${V1}/store-invite${query}`, {
    body: {
      medium: "email",
      address: "invitee@example.org",
      room_id: "!room:hs.test",
      sender: "@bob:hs.test",
      ...extra,
    },
  });

describe("invitation email over SMTP", () => {
  it("delivers the token, escapes hostile HTML and keeps CR/LF out of the headers", async () => {
    const res = await invite({
      room_name: "<script>alert(1)</script>",
      sender_display_name: "Bob\r\nBcc: evil@attacker.example",
    });
    expect(res.status).toBe(200);
    const [mail] = await sink.waitForMessages(1);
    expect(mail!.envelope.to).toEqual(["invitee@example.org"]);
    expect(mail!.parsed.text).toContain(res.body.token as string);
    expect(mail!.parsed.html).toContain(res.body.token as string);
    expect(mail!.parsed.html).not.toContain("<script>alert(1)</script>");
    expect(mail!.parsed.html).toContain("&lt;script&gt;");
    expect(mail!.parsed.headers.has("bcc")).toBe(false);
    expect(mail!.headerBlock).not.toMatch(/^Bcc:/im);
    expect(mail!.envelope.to).not.toContain("evil@attacker.example");
  });

  it("uses a fresh MIME boundary per message and RFC 2047 for non-ASCII subjects", async () => {
    await invite({ sender_display_name: "Zoë", room_name: "Café" });
    await invite({ sender_display_name: "Zoë", room_name: "Café" });
    const mails = await sink.waitForMessages(2);
    const boundaries = mails.map((m) => /boundary="?([^";\r\n]+)"?/.exec(m.headerBlock)?.[1]);
    expect(boundaries[0]).toBeTruthy();
    expect(boundaries[0]).not.toBe(boundaries[1]);
    expect(mails[0]!.headerBlock).toMatch(/^Subject: .*=\?UTF-8\?/im);
    expect(mails[0]!.parsed.subject).toContain("Zoë");
  });

  it("truncates long sender and room names as sydent does", async () => {
    await invite({ sender_display_name: "S".repeat(40), room_name: "R".repeat(40) });
    const [mail] = await sink.waitForMessages(1);
    expect(mail!.parsed.text).toContain(`${"S".repeat(19)}…`);
    expect(mail!.parsed.text).not.toContain("S".repeat(20));
    expect(mail!.parsed.text).toContain(`${"R".repeat(25)}…`);
  });

  it("renders an operator's raw .eml template chosen with ?brand=", async () => {
    const res = await invite(
      { room_name: "Garden", sender_display_name: "Bob\nX-Injected: 1" },
      "?brand=raw-brand",
    );
    expect(res.status).toBe(200);
    const [mail] = await sink.waitForMessages(1);
    expect(mail!.parsed.text?.trim()).toBe(`Join Garden with token ${res.body.token}`);
    expect(mail!.parsed.subject).toBe("Invitation from Bob X-Injected: 1");
    expect(mail!.parsed.headers.has("x-injected")).toBe(false);
  });

  it("ignores a brand that is a path or does not exist", async () => {
    for (const brand of ["../../etc", "nope"]) {
      const res = await invite({}, `?brand=${encodeURIComponent(brand)}`);
      expect(res.status).toBe(200);
    }
    const mails = await sink.waitForMessages(2);
    for (const m of mails) expect(m.parsed.html).toBeTruthy();
  });

  it("refuses an already bound address with M_THREEPID_IN_USE and its mxid", async () => {
    await is.seraph.store.db
      .insertInto("associations")
      .values({
        medium: "email",
        address: "bound@example.org",
        mxid: "@bound:hs.test",
        ts: 1,
        not_before: 1,
        not_after: 2,
      })
      .execute();
    const res = await invite({ address: "Bound@Example.org" });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ errcode: "M_THREEPID_IN_USE", mxid: "@bound:hs.test" });
  });

  it("rejects other media and invalid addresses", async () => {
    const msisdn = await invite({ medium: "msisdn", address: "447911123456" });
    expect(msisdn.status).toBe(400);
    expect(msisdn.body.errcode).toBe("M_UNRECOGNIZED");
    const bad = await invite({ address: "a@b@c" });
    expect(bad.status).toBe(400);
    expect(bad.body.errcode).toBe("M_INVALID_EMAIL");
  });

  it("reports M_EMAIL_SEND_ERROR when the mail server refuses, and keeps no invite", async () => {
    const before = await is.seraph.store.db
      .selectFrom("invites")
      .select(({ fn }) => fn.countAll().as("n"))
      .executeTakeFirst();
    sink.failNext(1);
    const res = await invite({ address: "refused@example.org" });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe("M_EMAIL_SEND_ERROR");
    const after = await is.seraph.store.db
      .selectFrom("invites")
      .select(({ fn }) => fn.countAll().as("n"))
      .executeTakeFirst();
    expect(after).toEqual(before);
    const rows = await is.seraph.store.db
      .selectFrom("invites")
      .select("address")
      .where("address", "=", "refused@example.org")
      .execute();
    expect(rows).toEqual([]);
  });

  it("keeps every request parameter with the stored invite", async () => {
    const res = await invite({ room_alias: "#tea:hs.test", "com.example.custom": { nested: [1, 2] } });
    const row = await is.seraph.store.db
      .selectFrom("invites")
      .select(["params_json", "address"])
      .where("token", "=", res.body.token as string)
      .executeTakeFirstOrThrow();
    expect(JSON.parse(row.params_json)).toMatchObject({
      room_alias: "#tea:hs.test",
      "com.example.custom": { nested: [1, 2] },
    });
    expect(row.address).toBe("invitee@example.org");
  });
});

describe("store-invite abuse resistance", () => {
  let guarded: TestSeraph;
  beforeAll(async () => {
    guarded = await startSeraph({
      email: {
        smtp: { host: sink.host, port: sink.port, tls: "none" },
        web_client_allowlist: ["chat.example.org"],
      },
      rate_limit: {
        enabled: true,
        store_invite_per_minute: 1000,
        invites_per_address: { burst: 2, per_hour: 1 },
        invites_per_sender: { burst: 3, per_hour: 1 },
      },
    });
  });
  afterAll(async () => guarded?.close());

  const send = (body: Record<string, unknown>) =>
    call(`${guarded.url}${V1}/store-invite`, {
      body: { medium: "email", room_id: "!r:hs.test", ...body },
    });

  it("requires the sender to be a Matrix user ID", async () => {
    const res = await send({ address: "a@example.org", sender: "PayPal Security <security@paypal.com>" });
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe("M_INVALID_PARAM");
  });

  it("limits invites per address and per sender", async () => {
    expect((await send({ address: "flood@example.org", sender: "@one:hs.test" })).status).toBe(200);
    expect((await send({ address: "flood@example.org", sender: "@two:hs.test" })).status).toBe(200);
    const perAddress = await send({ address: "flood@example.org", sender: "@three:hs.test" });
    expect(perAddress.status).toBe(429);
    expect(perAddress.body.errcode).toBe("M_LIMIT_EXCEEDED");
    for (const n of [1, 2, 3])
      expect((await send({ address: `t${n}@example.org`, sender: "@spam:hs.test" })).status).toBe(200);
    expect((await send({ address: "t4@example.org", sender: "@spam:hs.test" })).status).toBe(429);
  });

  it("uses the inviter's web client only on allowed hosts, and says a v1 sender is not verified", async () => {
    sink.clear();
    await send({
      address: "wc1@example.org",
      sender: "@w:hs.test",
      "org.matrix.web_client_location": "https://evil.example/login",
    });
    await send({
      address: "wc2@example.org",
      sender: "@w:hs.test",
      "org.matrix.web_client_location": "https://chat.example.org",
    });
    const to = (address: string) => sink.messages.find((m) => m.envelope.to.includes(address));
    await expect.poll(() => to("wc1@example.org") && to("wc2@example.org")).toBeTruthy();
    const [evil, allowed] = [to("wc1@example.org"), to("wc2@example.org")];
    expect(evil!.parsed.text, evil!.parsed.text).not.toContain("evil.example");
    expect(evil!.parsed.text).toContain("https://app.element.io/#/room/");
    expect(allowed!.parsed.text).toContain("https://chat.example.org/#/room/");
    expect(evil!.parsed.text).toContain("could not check who sent this invitation");
    expect(evil!.parsed.text).not.toContain("checked by this server");
  });
});
