/**
 * What people see (issue 14, and issue 9 items 4, 9 and 11): emails, SMS and pages in the reader's
 * language, with the operator's brand; sydent's template semantics; the pages' headers and wording.
 */
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { HomeserverClient } from "../../src/federation/index.js";
import { createStubDns, type FakeHomeserver, startFakeHomeserver } from "../support/fake-homeserver.js";
import { readSmsOutbox } from "../support/fake-sms.js";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";
import { type SinkMessage, type SmtpSink, startSmtpSink } from "../support/smtp-sink.js";

const V1 = "/_matrix/identity/api/v1";
const V2 = "/_matrix/identity/v2";

let sink: SmtpSink;
let hs: FakeHomeserver;
let plain: TestSeraph; // defaults, plus an operator brand folder with sydent-style templates
let branded: TestSeraph; // brand settings, requester IP, avatars, confirm button

beforeAll(async () => {
  sink = await startSmtpSink();
  hs = await startFakeHomeserver({ serverName: "hs.test" });
  const templatesDir = mkdtempSync(join(tmpdir(), "seraph-l10n-templates-"));
  cpSync(join(import.meta.dirname, "..", "..", "templates", "matrix-org"), join(templatesDir, "matrix-org"), {
    recursive: true,
  });
  mkdirSync(join(templatesDir, "sydent"));
  writeFileSync(
    join(templatesDir, "sydent", "invite.subject.eta"),
    "<%= it.printf('%(sender_display_name)s') %>",
  );
  writeFileSync(
    join(templatesDir, "sydent", "invite.txt.eta"),
    "[<%= it.sender_display_name %>][<%= it.bracketed_verified_sender %>][<%= it.bracketed_room_name %>]",
  );
  const smtp = { host: sink.host, port: sink.port, tls: "none" };
  const homeservers = new HomeserverClient({
    dns: createStubDns({ hosts: { "hs.test": "127.0.0.1" } }),
    ipAllowlist: ["127.0.0.1/32"],
    verifyCertificates: false,
    requestTimeoutMs: 1500,
  });
  plain = await startSeraph({ email: { smtp, templates_dir: templatesDir } }, { homeservers });
  branded = await startSeraph({
    email: {
      smtp,
      show_requester_ip: true,
      avatar_media_base_url: "https://media.example.org/",
      avatar_media_servers: ["hs.test"],
      brands: {
        acme: {
          display_name: "Acme Chat",
          support_email: "help@acme.example",
          operator_url: "https://acme.example/",
          default_language: "es",
          colours: { primary: "#1d4ed8" },
          invite_subject: { en: "%(inviter)s invites you to Acme", fr: "%(inviter)s vous invite chez Acme" },
          invite_subject_space: "%(inviter)s: a space at Acme",
        },
      },
    },
    validation: { confirm_link_with_button: true },
  });
});

afterAll(async () => {
  await plain?.close();
  await branded?.close();
  await hs?.close();
  await sink?.close();
});

beforeEach(() => sink.clear());

let n = 0;
async function requestToken(
  is: TestSeraph,
  opts: {
    body?: Record<string, unknown>;
    headers?: Record<string, string>;
    query?: string;
    secret?: string;
  } = {},
) {
  const email = `user${++n}@example.org`;
  const clientSecret = opts.secret ?? `secret-${n}`;
  const res = await call(`${is.url}${V1}/validate/email/requestToken${opts.query ?? ""}`, {
    body: { client_secret: clientSecret, email, send_attempt: 1, ...opts.body },
    headers: opts.headers ?? {},
  });
  expect(res.status, res.text).toBe(200);
  const mail = await mailTo(email);
  const link = /https?:\/\/\S+submitToken\?\S+/.exec(mail.parsed.text ?? "")?.[0];
  if (!link) throw new Error("no link in the mail");
  return { email, clientSecret, sid: String(res.body.sid), mail, link };
}

async function mailTo(address: string): Promise<SinkMessage> {
  await expect.poll(() => sink.messages.some((m) => m.envelope.to.includes(address))).toBe(true);
  return sink.messages.filter((m) => m.envelope.to.includes(address)).at(-1)!;
}

const header = (m: SinkMessage, name: string) => String(m.parsed.headers.get(name) ?? "");

async function page(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers, redirect: "manual" });
  const html = await res.text();
  const text = html
    .replace(/<[^>]+>/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  return { res, html, text, lang: /<html lang="([^"]*)"/.exec(html)?.[1] };
}

describe("validation emails and pages in the reader's language", () => {
  it("follows Accept-Language, names the operator, and leaves the requester's IP out", async () => {
    const { mail } = await requestToken(plain, { headers: { "accept-language": "fr-FR,fr;q=0.9,en;q=0.5" } });
    expect(mail.parsed.subject).toBe("Confirmez votre adresse e-mail pour Matrix");
    expect(header(mail, "content-language")).toBe("fr");
    expect(mail.parsed.html).toContain('<html lang="fr"');
    expect(mail.parsed.text).toContain("serveur d’identité Matrix de matrix.org");
    expect(mail.parsed.text).toContain("valables 24 heures");
    expect(mail.parsed.text).not.toContain("adresse IP");
    expect(mail.parsed.html).not.toContain("adresse IP");
  });

  it("prefers the lang field, keeps the language for a re-send, and pages follow the browser", async () => {
    const first = await requestToken(plain, {
      body: { lang: "de" },
      headers: { "accept-language": "fr" },
      secret: "resend-secret",
    });
    expect(first.mail.parsed.subject).toBe("Bestätigen Sie Ihre E-Mail-Adresse für Matrix");
    // A re-send asks in Spanish, but the session is German.
    sink.clear();
    const again = await call(`${plain.url}${V1}/validate/email/requestToken`, {
      body: { client_secret: "resend-secret", email: first.email, send_attempt: 2 },
      headers: { "accept-language": "es" },
    });
    expect(again.body.sid).toBe(first.sid);
    expect((await mailTo(first.email)).parsed.subject).toBe("Bestätigen Sie Ihre E-Mail-Adresse für Matrix");

    // A browser that names no shipped language gets the session's; a Spanish one gets Spanish.
    const wrong = new URL(first.link);
    wrong.searchParams.set("token", "nope");
    const stored = await page(wrong.toString(), { "accept-language": "pt-BR" });
    expect(stored.lang).toBe("de");
    expect(stored.res.headers.get("content-language")).toBe("de");
    expect(stored.text).toContain("Bestätigung fehlgeschlagen");
    const spanish = await page(first.link, { "accept-language": "es-ES" });
    expect(spanish.res.status).toBe(200);
    expect(spanish.lang).toBe("es");
    expect(spanish.text).toContain("Dirección de correo verificada");
    expect(spanish.text).toContain("matrix.org");
  });

  it("sends the SMS in the session's language", async () => {
    const res = await call(`${plain.url}${V1}/validate/msisdn/requestToken`, {
      body: {
        client_secret: "sms-fr",
        country: "FR",
        phone_number: "0612345678",
        send_attempt: 1,
        lang: "fr",
      },
    });
    expect(res.status, res.text).toBe(200);
    await expect
      .poll(async () => (await readSmsOutbox(join(plain.dir, "outbox"))).at(-1)?.body ?? "")
      .toMatch(/^Votre code est \d{6}$/);
  });
});

describe("brands", () => {
  it("ships vector-im next to matrix-org", async () => {
    const { mail, link } = await requestToken(plain, { query: "?brand=vector-im" });
    expect(mail.parsed.text).toContain("Element");
    expect(mail.parsed.text).not.toContain("matrix.org");
    const p = await page(link);
    expect(p.text).toContain("Element");
  });

  it("uses a configured brand's settings, remembers the brand with the session, and shows the IP when asked", async () => {
    const { mail, link } = await requestToken(branded, { query: "?brand=acme" });
    // No lang, no Accept-Language: the brand's default language.
    expect(header(mail, "content-language")).toBe("es");
    expect(mail.parsed.text).toContain("Acme Chat");
    expect(mail.parsed.text).toContain("help@acme.example");
    expect(mail.parsed.html).toContain("#1d4ed8");
    expect(mail.parsed.text).toContain("La solicitud se hizo desde la dirección IP 127.0.0.1.");
    // The page of the session has its brand even when the link no longer names it.
    const url = new URL(link);
    url.searchParams.delete("brand");
    const p = await page(url.toString());
    expect(p.text).toContain("Acme Chat");
    expect(p.lang).toBe("es");
  });
});

describe("invite emails", () => {
  const invite = (
    is: TestSeraph,
    extra: Record<string, unknown>,
    opts: { query?: string; token?: string } = {},
  ) =>
    call(`${is.url}${opts.token ? V2 : V1}/store-invite${opts.query ?? ""}`, {
      body: {
        medium: "email",
        address: `invitee${++n}@example.org`,
        room_id: "!room:hs.test",
        sender: "@bob:hs.test",
        ...extra,
      },
      headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
    });
  const lastMail = async () => {
    await expect.poll(() => sink.messages.length).toBeGreaterThan(0);
    return sink.messages.at(-1)!;
  };

  it("is French for a French reader, names the room, the inviter and the operator, and stores the language", async () => {
    const res = await invite(plain, {
      lang: "fr",
      room_alias: "#jardin:hs.test",
      sender_display_name: "Bob",
    });
    expect(res.status, res.text).toBe(200);
    const mail = await lastMail();
    expect(mail.parsed.subject).toBe("Bob (@bob:hs.test) vous invite à discuter");
    expect(header(mail, "content-language")).toBe("fr");
    expect(mail.parsed.text).toContain(
      "Bob vous invite à rejoindre le salon « #jardin:hs.test » sur Matrix.",
    );
    expect(mail.parsed.text).toContain("Identifiant Matrix annoncé @bob:hs.test, non vérifié");
    expect(mail.parsed.text).toContain("Pourquoi ai-je reçu ce message ?");
    expect(mail.parsed.text).toContain("matrix.org gère le serveur d’identité");
    expect(mail.parsed.html).toContain('<html lang="fr"');
    const row = await plain.seraph.store.db
      .selectFrom("invites")
      .select(["lang", "brand"])
      .where("token", "=", String(res.body.token))
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ lang: "fr", brand: null });
  });

  it("says space for a space, with sydent's subject", async () => {
    await invite(plain, { room_type: "m.space", room_name: "Club", sender_display_name: "Bob" });
    const mail = await lastMail();
    expect(mail.parsed.subject).toBe("Bob (@bob:hs.test) has invited you to a space");
    expect(mail.parsed.text).toContain("has invited you to join the space “Club” on Matrix.");
    expect(mail.parsed.html).toContain("Join the space");
  });

  it("uses a brand's subjects in the invite's language, and shows an mxc avatar the media base serves", async () => {
    await invite(
      branded,
      { room_name: "Garden", sender_display_name: "Bob", room_avatar_url: "mxc://hs.test/abcDEF_12" },
      { query: "?brand=acme" },
    );
    let mail = await lastMail();
    expect(mail.parsed.subject).toBe("Bob invites you to Acme");
    expect(mail.parsed.html).toContain(
      'src="https://media.example.org/_matrix/media/v3/thumbnail/hs.test/abcDEF_12?width=96&amp;height=96&amp;method=crop"',
    );
    expect(mail.parsed.text).toContain("Acme Chat");
    sink.clear();
    await invite(branded, { lang: "fr", room_type: "m.space" }, { query: "?brand=acme" });
    mail = await lastMail();
    expect(mail.parsed.subject).toBe("@bob:hs.test: a space at Acme");
    sink.clear();
    await invite(
      branded,
      { lang: "fr", room_avatar_url: "mxc://other.example/abc" },
      { query: "?brand=acme" },
    );
    mail = await lastMail();
    expect(mail.parsed.subject).toBe("@bob:hs.test vous invite chez Acme");
    expect(mail.parsed.html).not.toContain("thumbnail");
  });

  it("shows no mxc avatar unless a media base is configured", async () => {
    await invite(plain, { room_avatar_url: "mxc://hs.test/abc" });
    expect((await lastMail()).parsed.html).not.toContain("<img");
  });

  it("does not let the inviter set the unsubscribe link", async () => {
    await invite(plain, { unsubscribe_url: "https://evil.example/unsubscribe" });
    const mail = await lastMail();
    expect(mail.parsed.html).not.toContain("evil.example");
    expect(mail.parsed.text).not.toContain("evil.example");
  });

  describe("sydent's template semantics (issue 9 item 4)", () => {
    it("v1: bracketed values end with a space, no verified sender, empty display name when none", async () => {
      await invite(plain, { sender_display_name: "Bob", room_name: "Garden" }, { query: "?brand=sydent" });
      expect((await lastMail()).parsed.text?.trim()).toBe("[Bob][][(Garden) ]");
      sink.clear();
      await invite(plain, {}, { query: "?brand=sydent" });
      const mail = await lastMail();
      expect(mail.parsed.text?.trim()).toBe("[][][]");
    });

    it("v2: the authenticated sender is bracketed, with the trailing space", async () => {
      const serverName = `hs.test:${hs.port}`;
      hs.setUserinfo("oidc-bob", `@bob:${serverName}`);
      const reg = await call(`${plain.url}${V2}/account/register`, {
        body: {
          access_token: "oidc-bob",
          token_type: "Bearer",
          matrix_server_name: serverName,
          expires_in: 60,
        },
      });
      expect(reg.status, reg.text).toBe(200);
      const res = await invite(
        plain,
        { sender: `@bob:${serverName}`, sender_display_name: "Bob", room_name: "Garden" },
        { query: "?brand=sydent", token: String(reg.body.token) },
      );
      expect(res.status, res.text).toBe(200);
      expect((await lastMail()).parsed.text?.trim()).toBe(`[Bob][(@bob:${serverName}) ][(Garden) ]`);
    });
  });
});

describe("pages (issue 9 item 11)", () => {
  it("are sent with headers that keep the token in the page and scripts out", async () => {
    const { link } = await requestToken(plain);
    const p = await page(link);
    expect(p.res.status).toBe(200);
    const h = p.res.headers;
    expect(h.get("content-type")).toBe("text/html; charset=utf-8");
    expect(h.get("content-security-policy")).toContain("default-src 'none'");
    expect(h.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(h.get("content-security-policy")).not.toContain("script-src");
    expect(h.get("referrer-policy")).toBe("no-referrer");
    expect(h.get("cache-control")).toBe("no-store");
    expect(h.get("x-content-type-options")).toBe("nosniff");
    expect(p.html).not.toContain("<script");
  });

  it("say the session was closed after too many wrong tokens, not that it expired", async () => {
    const { link } = await requestToken(plain);
    const wrong = new URL(link);
    wrong.searchParams.set("token", "wrong");
    for (let i = 0; i < 5; i++) expect((await page(wrong.toString())).res.status).toBe(400);
    const closed = await page(wrong.toString());
    expect(closed.text).toContain("closed after 5 wrong attempts");
    expect(closed.text).not.toMatch(/expired/i);
    // Even the right token cannot open it any more.
    expect((await page(link)).text).toContain("Verification closed");
  });

  it("say in plain words that a session is unknown, and that a link is incomplete", async () => {
    const { link } = await requestToken(plain);
    const unknown = new URL(link);
    unknown.searchParams.set("sid", "no-such-session");
    const p = await page(unknown.toString());
    expect(p.res.status).toBe(400);
    expect(p.text).toContain("We could not find the verification request this link belongs to");
    expect(p.text).not.toMatch(/client_secret|M_[A-Z_]+/);
    const cut = new URL(link);
    cut.searchParams.delete("token");
    const incomplete = await page(cut.toString());
    expect(incomplete.res.status).toBe(400);
    expect(incomplete.text).toContain("This link is incomplete");
    expect(incomplete.text).not.toMatch(/\bsid\b|client_secret|M_[A-Z_]+/);
  });
});

describe("validation.confirm_link_with_button (issue 9 item 9)", () => {
  it("GET shows one button and validates nothing; its POST validates", async () => {
    const { link, sid, clientSecret } = await requestToken(branded);
    const validated = () =>
      call(`${branded.url}${V1}/3pid/getValidated3pid?sid=${sid}&client_secret=${clientSecret}`);
    for (let i = 0; i < 2; i++) {
      const p = await page(link); // a link scanner, twice
      expect(p.res.status).toBe(200);
      expect(p.html.match(/<button/g)).toHaveLength(1);
      expect(p.html).toContain('method="post"');
    }
    expect((await validated()).body.errcode).toBe("M_SESSION_NOT_VALIDATED");

    const url = new URL(link);
    const form = new URLSearchParams({
      sid,
      client_secret: clientSecret,
      token: url.searchParams.get("token")!,
      confirm: "1",
    });
    const res = await fetch(`${branded.url}${url.pathname}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form.toString(),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await res.text()).toContain("Email address verified");
    expect((await validated()).status).toBe(200);
  });

  it("leaves the API's POST submitToken as it was", async () => {
    const { link, sid, clientSecret } = await requestToken(branded);
    const token = new URL(link).searchParams.get("token");
    const res = await call(`${branded.url}${V1}/validate/email/submitToken`, {
      body: { sid, client_secret: clientSecret, token },
    });
    expect(res.body).toEqual({ success: true });
  });
});
